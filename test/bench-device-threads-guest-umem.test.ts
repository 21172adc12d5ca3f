// `bench device --backend af-xdp --threads --guest-umem [--mode txonly|rxonly|io-fwd]`:
// the device in its I/O threads with guest RAM as the UMEM against the copy
// path, run by run on one veth pair. On a short run of each mode: both sides
// count frames at both ends (driver or device, and peer or generator), the
// guest-umem side moved its frames in place (its own counters) and the copy
// side has none of those, and the result's baseline is the copy path. No rate
// is asserted: benchmarks report figures, tests check behaviour.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { benchDeviceWorkerGuestUmem, type DeviceWorkerMode } from '../src/bench/device-worker-bench';
import { UsageError } from '../src/cli/args';
import { benchCommand } from '../src/cli/bench-command';

test('bench device --guest-umem still needs --backend af-xdp', async () => {
  try {
    await benchCommand(['device', '--guest-umem']);
    assert.unreachable('accepted');
  } catch (e) {
    assert.instance(e, UsageError);
    assert.match((e as Error).message, /--backend af-xdp/);
  }
});

for (const [mode, size] of [['txonly', 64], ['rxonly', 1500], ['io-fwd', 64]] as Array<[DeviceWorkerMode, number]>) {
  test(`bench device --threads --guest-umem --mode ${mode} --size ${size}: guest-umem and the copy path each counted at both ends, baseline 'copy path'`, async () => {
    const r = await benchDeviceWorkerGuestUmem({ mode, seconds: 0.5, runs: 2, size, xdpMode: 'native', progress: () => {} });
    assert.is(r.benchmark, 'device-worker-guest-umem');
    assert.is(r.workload, mode);
    assert.is(r.baseline.name, 'copy path');
    assert.is(r.runs.length, 2);
    for (const run of r.runs as Array<Record<string, unknown>>) {
      const why = JSON.stringify(run).slice(0, 3000);
      assert.ok((run.packets as number) > 0 && (run.peerPackets as number) > 0, `guest-umem side counted nothing: ${why}`);
      assert.ok((run.baselinePackets as number) > 0 && (run.baselinePeerPackets as number) > 0, `copy side counted nothing: ${why}`);
      const g = (run.counters as { guestUmem?: Record<string, number> }).guestUmem;
      assert.ok(g, `no guest-umem counters on the guest-umem side: ${why}`);
      if (mode !== 'rxonly') assert.ok(g.txDirect! > 0, why);
      if (mode !== 'txonly') assert.ok(g.rxDirect! > 0, why);
      assert.is((run.baselineCounters as { guestUmem?: unknown }).guestUmem, undefined, 'the copy path has no guest-umem counters');
      if (mode === 'rxonly') assert.ok((run.peerPackets as number) >= (run.packets as number), `the generator sent fewer than the driver got: ${why}`);
      else assert.ok((run.peerPackets as number) <= (run.packets as number), `the peer saw more than the device sent: ${why}`);
    }
    assert.ok(r.ratio > 0 && Number.isFinite(r.ratio));
  });
}

test.run();
