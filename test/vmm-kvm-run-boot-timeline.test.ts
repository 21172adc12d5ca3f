// Boot to first packet, end to end: `xdpvm run -timeline` prints every boot
// phase, in the order a boot reaches them, on one clock with its origin; a
// short `bench pmd` run carries the timeline of each run and its medians,
// with the first frame at the peer; the counts the CLI starts threads from
// are read as run-options reads them; an XDP program that cannot be attached
// (it is now attached in the background) still ends the run with its reason.
// No duration is asserted: benchmarks report figures, tests check behaviour.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { benchPmd } from '../src/bench/pmd-bench';
import { PmdVm } from '../src/bench/pmd-vm';
import { XdpCounter } from '../src/bench/xdp-counter';
import { inNetns, VethPair, xdpState } from '../src/host/netns';
import { xsk } from '../src/native/xsk';
import { BOOT_PHASES, parseBootTimeline, type BootTimelineJson } from '../src/vmm/boot-timeline';
import { runThreadCounts } from '../src/vmm/run-threads';
import { kvmTest } from './support/kvm-guest';
import { counterOn, describe, TIMEOUT_MS } from './support/pmd-veth';

function assertInOrder(t: object, why: string): void {
  let last = -Infinity;
  for (const p of BOOT_PHASES) {
    const v = (t as Record<string, unknown>)[p];
    assert.ok(typeof v === 'number' && Number.isFinite(v), `phase ${p} missing: ${why}`);
    assert.ok((v as number) >= last, `phase ${p} (${String(v)}) before the one preceding it (${last}): ${why}`);
    last = v as number;
  }
}

test('the timeline line parses, and malformed ones are refused', () => {
  const line = (o: unknown): string => `xdpvm: guest debug-exit with status 0\nxdpvm: boot timeline ${JSON.stringify(o)}\n`;
  const t = parseBootTimeline(line({ origin: { epochMs: 1, monotonicMs: 2 }, nodeReady: 3, firstTx: 9, xdpAttached: 5, cpuMs: { driverOk: 4 } }))!;
  assert.equal(t, { origin: { epochMs: 1, monotonicMs: 2 }, cpuMs: { driverOk: 4 }, nodeReady: 3, firstTx: 9, xdpAttached: 5 } as BootTimelineJson);
  assert.is(parseBootTimeline(line({ nodeReady: 3 })), undefined, 'no origin');
  assert.is(parseBootTimeline(line({ origin: { epochMs: 1, monotonicMs: 2 }, nodeReady: 'soon' })), undefined, 'a phase that is not a number');
  assert.is(parseBootTimeline('xdpvm: boot timeline {oops\n'), undefined);
  assert.is(parseBootTimeline('nothing here\n'), undefined);
});

test('the threads the CLI starts early: -smp, the -netdevs\' queues= and iothread-vq-mapping=, as run-options reads them', () => {
  assert.equal(runThreadCounts(['-kernel', 'k']), { vcpus: 1, pairs: 0, ioThreads: 0 });
  assert.equal(runThreadCounts(['-smp', '2', '-netdev', 'af-xdp,id=n0,ifname=v,queues=2', '-device', 'virtio-net-pci,netdev=n0']), { vcpus: 2, pairs: 2, ioThreads: 2 });
  assert.equal(runThreadCounts(['-smp', 'cpus=3,sockets=1', '-netdev', 'af-xdp,id=a,ifname=v', '-netdev', 'af-xdp,queues=4,id=b,ifname=w']), { vcpus: 3, pairs: 5, ioThreads: 5 });
  // Two pairs on one thread: one thread to start, not two.
  assert.equal(runThreadCounts(['-netdev', 'af-xdp,id=n0,ifname=v,queues=2', '-device', 'virtio-net-pci,netdev=n0,iothread-vq-mapping=0:0']), { vcpus: 1, pairs: 2, ioThreads: 1 });
  assert.equal(runThreadCounts(['-netdev', 'af-xdp,id=n0,ifname=v,queues=4', '-device', 'virtio-net-pci,iothread-vq-mapping=0:1:0:1,netdev=n0']), { vcpus: 1, pairs: 4, ioThreads: 2 });
  // Whatever parseRunOptions will refuse costs one thread at most.
  assert.equal(runThreadCounts(['-smp', 'lots', '-netdev', 'af-xdp,id=n0,ifname=v,queues=0']), { vcpus: 1, pairs: 1, ioThreads: 1 });
});

kvmTest('xdpvm run -timeline: every phase, in the order of a boot, with the first frame sent after DRIVER_OK', async () => {
  const pair = new VethPair('tl');
  const counter = counterOn(pair);
  try {
    const vm = PmdVm.start({ netns: pair.a.netns, ifname: pair.a.ifname, append: 'mode=txonly count=64 timeout=60', timeline: true, timeoutMs: TIMEOUT_MS });
    const e = await vm.exited;
    assert.is(e.code, 0, describe(e));
    const t = e.timeline;
    assert.ok(t, `no timeline line:\n${describe(e)}`);
    console.log(`# timeline ${JSON.stringify({ ...t, origin: undefined })}`);
    assertInOrder(t!, JSON.stringify(t));
    // The XDP program attaches beside the VM's set-up and boot: after the sockets, at no fixed place after that.
    assert.ok(t!.xdpAttached! >= t!.backendsOpen!, JSON.stringify(t));
    assert.ok(t!.origin.monotonicMs > 0 && t!.origin.epochMs > 0);
    // Process CPU time at the phases the main thread marks.
    for (const p of ['modulesLoaded', 'backendsOpen', 'vmReady', 'driverOk'] as const) assert.ok(t!.cpuMs?.[p]! > 0, `cpuMs.${p}: ${JSON.stringify(t!.cpuMs)}`);
    // The peer dated the guest's first frame on the same clock: not before the driver was ready.
    const first = counter.firstFrameMs();
    assert.ok(first !== undefined && first - t!.origin.monotonicMs >= t!.driverOk!, `first frame ${first} vs ${JSON.stringify(t)}`);
  } finally {
    counter.close();
    pair.remove();
  }
});

kvmTest('bench pmd: each run carries the VMM\'s boot timeline and the first frame at the peer, and the result their medians', async () => {
  const r = await benchPmd({ mode: 'txonly', queues: 1, size: 64, xdpMode: 'native', seconds: 0.3, runs: 1, progress: () => {} });
  const run = r.runs[0] as { bootTimelineMs: Record<string, number> | null; bootToFirstPacketMs: number | null };
  const t = run.bootTimelineMs;
  assert.ok(t, JSON.stringify(r.runs[0]));
  assertInOrder(t!, JSON.stringify(t));
  assert.ok(t!.firstFrameAtPeer! >= t!.driverOk!, JSON.stringify(t));
  // From the spawn of the VMM (ip netns exec, then node) the same frame comes later than from the VMM's own start.
  assert.ok(run.bootToFirstPacketMs! >= t!.firstFrameAtPeer!, JSON.stringify(r.runs[0]));
  const m = r.bootTimelineMs!;
  for (const p of [...BOOT_PHASES, 'xdpAttached', 'firstFrameAtPeer']) {
    assert.ok(m[p], `no median for ${p}: ${JSON.stringify(m)}`);
    assert.is(m[p]!.median, t![p], `${p}: one run, its value is the median`);
  }
});

kvmTest('an XDP program that cannot be attached ends the run with the reason, and leaves the other program in place', async () => {
  const pair = new VethPair('tl');
  // Another program holds the interface's driver-mode XDP slot.
  const other = inNetns(pair.a.netns, () => XdpCounter.attach(xsk.ifNameToIndex(pair.a.ifname), 'native'));
  try {
    const vm = PmdVm.start({ netns: pair.a.netns, ifname: pair.a.ifname, xdpMode: 'native', append: 'mode=txonly count=64 timeout=60', timeoutMs: TIMEOUT_MS });
    const e = await vm.exited;
    assert.is(e.code, 1, describe(e));
    assert.match(e.stderr, /another XDP program \(id \d+\) is already attached/, describe(e));
    assert.is(xdpState(pair.a.netns, pair.a.ifname).attached, 1, 'the other program stays');
  } finally {
    other.close();
    pair.remove();
  }
});

test.run();
