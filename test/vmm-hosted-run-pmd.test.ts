// `xdpvm run -accel hosted` end to end, on any host (no /dev/kvm needed):
// the vCPU is the PMD test guest's hosted build, a process on guest RAM's
// memfd whose port and MMIO accesses the vCPU thread relays as exits, queue
// notifications through the ioeventfd table (src/vmm/hosted). Everything else
// is what `xdpvm run` runs under KVM: the PCI bus, virtio-pci, the device in
// its I/O worker, the AF_XDP backend on one end of a veth pair. The peer end
// counts (XDP) and generates (XSK); packets are counted at both ends.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PmdVm } from '../src/bench/pmd-vm';
import { ensurePmdImage } from '../src/guest-build/pmd';
import { VethPair, xdpState } from '../src/host/netns';
import { counterOn, describe, generator, TIMEOUT_MS, waitUntil } from './support/pmd-veth';

const BIN = path.join(__dirname, '..', '..', 'bin', 'xdpvm');

test('hosted txonly: every frame the hosted guest sent is counted by the peer; notifies went by ioeventfd; nothing is left behind', async () => {
  const pair = new VethPair('hrun');
  const counter = counterOn(pair);
  try {
    const vm = PmdVm.start({ netns: pair.a.netns, ifname: pair.a.ifname, accel: 'hosted', append: 'mode=txonly count=20000 timeout=60', timeoutMs: TIMEOUT_MS });
    const e = await vm.exited;
    console.log(`# hosted txonly: ${describe(e).split('\n')[0]}, wall ${e.wallMs.toFixed(0)} ms, guest ${e.result?.tx_packets} sent, peer ${counter.total()} counted`);
    assert.is(e.code, 0, describe(e));
    assert.is(e.result?.tx_packets, 20000, describe(e));
    await waitUntil('the peer to count 20000 frames', () => counter.total() >= 20000, 5000);
    assert.is(counter.total(), 20000);
    // The device's own count, from the VMM's counters line.
    const line = /xdpvm-counters (\{.*\})/.exec(e.stderr)?.[1];
    assert.ok(line, e.stderr);
    const pair0 = (JSON.parse(line) as { nets: { pairs: { device: { txFrames: number }; worker: { kicksRead: number } }[] }[] }).nets[0]!.pairs[0]!;
    assert.is(pair0.device.txFrames, 20000);
    // The guest's kicks reached the I/O thread (through the relay's ioeventfd table, not the platform thread).
    assert.ok(pair0.worker.kicksRead > 0, JSON.stringify(pair0));
    assert.ok((e.result?.per_queue[0]?.tx_kicks ?? 0) > 0);
    assert.match(e.stderr, /xdpvm: guest debug-exit with status 0/);
    assert.is(xdpState(pair.a.netns, pair.a.ifname).attached, 0, 'no XDP program left on the interface');
  } finally {
    counter.close();
    pair.remove();
  }
});

test('hosted rxonly: frames the peer sends reach the hosted guest', async () => {
  const pair = new VethPair('hrun');
  try {
    const vm = PmdVm.start({ netns: pair.a.netns, ifname: pair.a.ifname, accel: 'hosted', append: 'mode=rxonly count=5000 timeout=60', timeoutMs: TIMEOUT_MS });
    const gen = generator(pair, 60);
    const e = await vm.exited;
    gen.stop();
    const genOut = await gen.done;
    console.log(`# hosted rxonly: exit ${e.code}, wall ${e.wallMs.toFixed(0)} ms, guest received ${e.result?.rx_packets}`);
    assert.is(e.code, 0, `${describe(e)}\n--- generator\n${genOut}`);
    assert.ok((e.result?.rx_packets ?? 0) >= 5000, describe(e));
  } finally {
    pair.remove();
  }
});

test('hosted: SIGTERM mid-run ends the guest process and the run, and detaches the XDP program', async () => {
  const pair = new VethPair('hrun');
  try {
    const vm = PmdVm.start({ netns: pair.a.netns, ifname: pair.a.ifname, accel: 'hosted', append: 'mode=txonly seconds=60', timeoutMs: TIMEOUT_MS });
    let seen = '';
    await waitUntil('the guest to start sending', () => {
      seen = spawnSync('pgrep', ['-f', 'pmd-hosted 4 4 3'], { encoding: 'utf8' }).stdout.trim();
      return seen !== '';
    }, 20_000);
    await new Promise((r) => setTimeout(r, 300));
    vm.signal('SIGTERM');
    const e = await vm.exited;
    assert.is(e.code, 0, describe(e));
    assert.match(e.stderr, /xdpvm: guest stopped: SIGTERM/);
    // The hosted vCPU process went with the run.
    for (const pid of seen.split('\n')) assert.not.ok(spawnSync('kill', ['-0', pid]).status === 0, `pmd-hosted ${pid} still running`);
    assert.is(xdpState(pair.a.netns, pair.a.ifname).attached, 0, 'no XDP program left on the interface');
  } finally {
    pair.remove();
  }
});

test('hosted: wrong combinations are usage errors that name the option', () => {
  const elf = ensurePmdImage();
  const run = (...args: string[]): { status: number | null; stderr: string } => spawnSync(process.execPath, [BIN, 'run', '-kernel', elf, ...args], { encoding: 'utf8' });
  let r = run('-accel', 'hosted', '-iopl', '0');
  assert.is.not(r.status, 0);
  assert.match(r.stderr, /-iopl: not with -accel hosted/);
  r = run('-accel', 'warp');
  assert.match(r.stderr, /-accel: 'warp' is not kvm or hosted/);
  r = run('-accel', 'hosted', '-enable-kvm');
  assert.match(r.stderr, /-accel hosted and -enable-kvm exclude each other/);
  r = run('-accel', 'hosted,vcpu=/nonexistent/pmd-hosted');
  assert.match(r.stderr, /-accel hosted: no hosted vCPU executable '\/nonexistent\/pmd-hosted'/);
  r = run('-accel', 'kvm,vcpu=x');
  assert.match(r.stderr, /-accel kvm: unknown property 'vcpu'/);
  r = run('-accel', 'hosted', '-m', '4G');
  assert.match(r.stderr, /-accel hosted: at most \d+ MiB of guest RAM/);
});

test.run();
