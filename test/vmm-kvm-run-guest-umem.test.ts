// `xdpvm run` with guest RAM as the UMEM (-netdev af-xdp,...,guest-umem=
// on|auto|off): the PMD test guest under the VMM, its device serviced by
// the I/O threads on one end of a veth pair, the peer end counting (XDP) and
// generating (XSK). on and auto send and receive in place:
// the VMM's exit counters show the direct path's own counters (txDirect,
// rxDirect, bumped by nothing else); off is the copy path (no such
// counters). Frames are counted at both ends.
// Needs /dev/kvm (without it, scripts/test.mjs runs this file in the TCG
// harness: functional only).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PmdVm } from '../src/bench/pmd-vm';
import { parseVmmCounters } from '../src/bench/per-million';
import { VethPair, xdpState } from '../src/host/netns';
import { kvmTest } from './support/kvm-guest';
import { counterOn, describe, generator, TIMEOUT_MS, waitUntil } from './support/pmd-veth';

type Mode = 'on' | 'auto' | 'off';

/** The device's first pair as the VMM counted it at exit. */
function pairCounters(stderr: string): NonNullable<ReturnType<typeof parseVmmCounters>>['nets'][number]['pairs'][number] {
  const c = parseVmmCounters(stderr);
  const p = c?.nets[0]?.pairs[0];
  if (!p) throw new Error(`no xdpvm-counters line:\n${stderr.slice(-2000)}`);
  return p;
}

const props = (mode: Mode): string => `,guest-umem=${mode}`;

for (const mode of ['on', 'auto', 'off'] as const) {
  kvmTest(`guest-umem=${mode}, txonly: the peer counts every frame the guest sent, ${mode === 'off' ? 'copied' : 'sent in place'}`, async () => {
    const pair = new VethPair('gum');
    const counter = counterOn(pair);
    try {
      const vm = PmdVm.start({ netns: pair.a.netns, ifname: pair.a.ifname, netdevProps: props(mode), append: 'mode=txonly count=1000 timeout=120', timeoutMs: TIMEOUT_MS });
      const e = await vm.exited;
      assert.is(e.code, 0, describe(e));
      assert.is(e.result?.tx_packets, 1000, describe(e));
      await waitUntil('the peer to count 1000 frames', () => counter.total() >= 1000, 5000);
      assert.is(counter.total(), 1000);
      const p = pairCounters(e.stderr);
      console.log(`# guest-umem=${mode} txonly: device txFrames ${p.device.txFrames}, backend txPackets ${p.backend.txPackets}, guestUmem ${JSON.stringify(p.guestUmem ?? null)}`);
      assert.is(p.device.txFrames, 1000);
      assert.is(p.backend.txPackets, 1000);
      assert.not.match(e.stderr, /using the copy path/, 'no fall-back message');
      if (mode === 'off') assert.is(p.guestUmem, undefined, 'the copy path has no guest-umem counters');
      else {
        assert.ok(p.guestUmem, describe(e));
        assert.is(p.guestUmem!.txDirect, 1000, JSON.stringify(p.guestUmem));
        assert.is(p.guestUmem!.txDirectCompleted, 1000);
        assert.is(p.guestUmem!.txBounced + p.guestUmem!.refusedOutside + p.guestUmem!.unknownCompletions, 0, JSON.stringify(p.guestUmem));
      }
      assert.is(xdpState(pair.a.netns, pair.a.ifname).attached, 0, 'no XDP program left on the interface');
    } finally {
      counter.close();
      pair.remove();
    }
  });
}

for (const mode of ['on', 'off'] as const) {
  kvmTest(`guest-umem=${mode}, rxonly: frames the peer sends reach the guest, ${mode === 'on' ? 'written into its buffers by the kernel' : 'copied'}`, async () => {
    const pair = new VethPair('gum');
    try {
      const vm = PmdVm.start({ netns: pair.a.netns, ifname: pair.a.ifname, netdevProps: props(mode), append: 'mode=rxonly count=300 timeout=120', timeoutMs: TIMEOUT_MS });
      const gen = generator(pair, 100);
      const e = await vm.exited;
      gen.stop();
      const genOut = await gen.done;
      assert.is(e.code, 0, `${describe(e)}\n--- generator\n${genOut}`);
      const got = e.result?.rx_packets ?? 0;
      assert.ok(got >= 300, describe(e));
      const p = pairCounters(e.stderr);
      console.log(`# guest-umem=${mode} rxonly: guest received ${got}, device rxFrames ${p.device.rxFrames}, guestUmem ${JSON.stringify(p.guestUmem ?? null)}`);
      // The device delivered at least what the guest counted (more may have arrived after it stopped counting).
      assert.ok(p.device.rxFrames >= got, `device ${p.device.rxFrames}, guest ${got}`);
      if (mode === 'off') assert.is(p.guestUmem, undefined);
      else {
        assert.ok((p.guestUmem?.rxDirect ?? 0) >= got, JSON.stringify(p.guestUmem));
        assert.is(p.guestUmem!.rxBounced + p.guestUmem!.unknownRx + p.guestUmem!.rxBadOffset, 0, JSON.stringify(p.guestUmem));
      }
    } finally {
      pair.remove();
    }
  });
}

kvmTest('guest-umem=on, io-fwd with 2 queue pairs (one registration, XDP_SHARED_UMEM): every forwarded frame comes back to the peer, sent in place', async () => {
  const pair = new VethPair('gum', { queues: 2 });
  const counter = counterOn(pair);
  try {
    const vm = PmdVm.start({
      netns: pair.a.netns, ifname: pair.a.ifname, cpus: 2, queues: 2, xdpMode: 'native', netdevProps: ',guest-umem=on',
      append: 'mode=io-fwd queues=2 count=200 timeout=120', timeoutMs: TIMEOUT_MS,
    });
    const gens = [generator(pair, 100, 0), generator(pair, 100, 1)];
    const e = await vm.exited;
    for (const g of gens) g.stop();
    await Promise.all(gens.map((g) => g.done));
    assert.is(e.code, 0, describe(e));
    assert.equal(e.result?.per_queue.map((q) => q.tx_packets), [200, 200], describe(e));
    await waitUntil('the peer to count what the guest forwarded', () => counter.total() >= 400, 5000);
    assert.is(counter.total(), 400);
    const c = parseVmmCounters(e.stderr)!;
    for (const p of c.nets[0]!.pairs) {
      console.log(`# guest-umem=on io-fwd pair ${p.pair}: ${JSON.stringify(p.guestUmem ?? null)}`);
      assert.is(p.guestUmem?.txDirect, 200, JSON.stringify(p.guestUmem));
      assert.ok((p.guestUmem?.rxDirect ?? 0) >= 200, JSON.stringify(p.guestUmem));
    }
  } finally {
    counter.close();
    pair.remove();
  }
});

test.run();
