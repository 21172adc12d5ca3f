// `xdpvm run` end to end, the paths around the data path: the interrupt
// path (MSI-X through irqfd and the GSI route into the guest's local APIC;
// with MSI-X off, INTx and the ISR register), VQ_PAIRS_SET through the I/O
// workers, SIGTERM mid-traffic, and a guest exception. Same set-up as
// vmm-kvm-run-pmd-modes.test.ts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PmdVm } from '../src/bench/pmd-vm';
import { VethPair, xdpState } from '../src/host/netns';
import { kvmTest } from './support/kvm-guest';
import { counterOn, describe, generator, settled, TIMEOUT_MS, waitUntil } from './support/pmd-veth';

kvmTest("interrupt path: queue 0's RX completions raise MSI-X entry 0, the irqfd/MSI route delivers it, and it is pending in the guest's local APIC", async () => {
  // A ring-3 guest cannot take the interrupt; with irq=V it enables its APIC and MSI-X, asks for
  // used-buffer notifications on RX queue 0, checks vector V is not pending, then waits for it in IRR
  // before it polls anything (guest-images/pmd/README.md).
  const pair = new VethPair('run');
  try {
    const vm = PmdVm.start({ netns: pair.a.netns, ifname: pair.a.ifname, append: 'mode=rxonly irq=64 count=300 timeout=120', timeoutMs: TIMEOUT_MS });
    const gen = generator(pair, 100);
    const e = await vm.exited;
    gen.stop();
    await gen.done;
    console.log(`# run irq: exit ${e.code}, ${/interrupt: .*/.exec(e.console)?.[0] ?? 'no interrupt line'}`);
    assert.is(e.code, 0, describe(e));
    assert.match(e.stderr, /guest debug-exit with status 0/, describe(e));
    assert.ok(/xdpvm-pmd: interrupt: vector 64 pending in the local APIC's IRR/.test(e.console), describe(e));
    assert.ok(/"irq_vector":64,"irq_seen":true/.test(e.console), describe(e));
    assert.ok((e.result?.rx_packets ?? 0) >= 300, describe(e));
  } finally {
    pair.remove();
  }
});

kvmTest("INTx: with MSI-X left off, queue 0's RX completions set the ISR queue bit and raise INTx (the VMM relays the I/O worker's call eventfd)", async () => {
  // intx=1: no MSI-X, used-buffer notifications on RX queue 0; vCPU 0 checks ISR is clear, then waits for its
  // queue bit (guest-images/pmd/README.md). Only the VMM can set it: the worker signals an eventfd.
  const pair = new VethPair('run');
  try {
    const vm = PmdVm.start({ netns: pair.a.netns, ifname: pair.a.ifname, append: 'mode=rxonly intx=1 count=300 timeout=60', timeoutMs: TIMEOUT_MS });
    const gen = generator(pair, 100);
    const e = await vm.exited;
    gen.stop();
    await gen.done;
    console.log(`# run intx: exit ${e.code}, ${/interrupt: .*/.exec(e.console)?.[0] ?? 'no interrupt line'}`);
    assert.is(e.code, 0, describe(e));
    assert.ok(/xdpvm-pmd: interrupt: ISR queue bit set \(INTx\)/.test(e.console), describe(e));
    assert.is(e.result?.intx_seen, true, describe(e));
    assert.ok((e.result?.rx_packets ?? 0) >= 300, describe(e));
  } finally {
    pair.remove();
  }
});

kvmTest('VQ_PAIRS_SET 1 of 2 pairs: frames reach pair 0 only; pair 1, its buffers posted and kicked, stays untouched', async () => {
  const pair = new VethPair('run', { queues: 2 });
  try {
    // Driver-mode XDP: veth delivers the peer's TX queue q on RX queue q, so both sockets get frames.
    const vm = PmdVm.start({
      netns: pair.a.netns, ifname: pair.a.ifname, cpus: 1, queues: 2, xdpMode: 'native',
      append: 'mode=rxonly queues=2 active=1 count=300 timeout=60', timeoutMs: TIMEOUT_MS,
    });
    const gens = [generator(pair, 100, 0), generator(pair, 100, 1)];
    const e = await vm.exited;
    for (const g of gens) g.stop();
    await Promise.all(gens.map((g) => g.done));
    console.log(`# run active=1 of 2: exit ${e.code}, per queue rx_used ${JSON.stringify(e.result?.per_queue.map((q) => q.rx_used))}`);
    assert.is(e.code, 0, describe(e));
    assert.is(e.result?.active, 1);
    assert.ok(e.result!.per_queue[0]!.rx_packets >= 300, describe(e));
    assert.is(e.result!.per_queue[1]!.rx_used, 0, `pair 1 is off: the device must not use its RX ring\n${describe(e)}`);
  } finally {
    pair.remove();
  }
});

kvmTest('SIGTERM mid-traffic: the run ends, status 0, and the XDP program and sockets are gone', async () => {
  const pair = new VethPair('run');
  const counter = counterOn(pair);
  try {
    const vm = PmdVm.start({ netns: pair.a.netns, ifname: pair.a.ifname, append: 'mode=txonly seconds=600', timeoutMs: TIMEOUT_MS });
    await waitUntil('traffic at the peer', () => counter.total() > 100, 120_000);
    const attached = xdpState(pair.a.netns, pair.a.ifname);
    assert.ok(attached.attached !== 0, 'the VMM attached its program while running');
    const t0 = Date.now();
    vm.signal('SIGTERM');
    const e = await vm.exited;
    console.log(`# run SIGTERM: exit ${e.code ?? e.signal} ${Date.now() - t0} ms after the signal, peer had ${counter.total()}`);
    assert.is(e.code, 0, describe(e));
    assert.match(e.stderr, /guest stopped: SIGTERM/);
    assert.is(xdpState(pair.a.netns, pair.a.ifname).attached, 0, "no XDP program left on the interface");
    // Frames the kernel took before the exit may still be on their way through the veth; once
    // they are in, nothing more may come.
    const before = await settled(() => counter.total(), 500, 15_000);
    await new Promise((r) => setTimeout(r, 1000));
    assert.is(counter.total(), before, 'no frame leaves after the VMM ended');
  } finally {
    counter.close();
    pair.remove();
  }
});

kvmTest('a guest exception ends the run with exit status 1 and the decoded fault', async () => {
  const pair = new VethPair('run');
  try {
    const e = await PmdVm.start({ netns: pair.a.netns, ifname: pair.a.ifname, append: 'fault=pf', timeoutMs: TIMEOUT_MS }).exited;
    assert.is(e.code, 1, describe(e));
    assert.match(e.stderr, /guest error: vCPU 0: guest exception 14 \(#PF page fault\) error code 0x4 at rip 0x40[0-9a-f]+ cs 0x2b .* cr2 0x10/);
    assert.is(xdpState(pair.a.netns, pair.a.ifname).attached, 0, "no XDP program left on the interface");
  } finally {
    pair.remove();
  }
});

test.run();
