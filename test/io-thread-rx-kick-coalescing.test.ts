// An I/O thread that coalesces (SHARED_CPU_POLICY: it shares its CPU with the
// vCPU), has run out of receive buffers and is woken by the driver's kick for
// new ones first yields for the coalescing time, kicks still off: the buffers
// the driver hands back meanwhile are filled in the same wake-up, without a
// kick per burst. A driver without EVENT_IDX (the PMD guest's default, DPDK's
// virtio PMD) cannot be asked to wait for a batch (§2.7.10); served at once,
// the PMD guest's receive side ran at a kick per 33 frames (README, "Queues
// and CPUs").
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { featureMask, VirtioFeature } from 'virtio-spec-types';
import { SplitRingDriver } from '../src/fuzz/split-ring-driver';
import { sys } from '../src/native/sys';
import type { QueueConfig } from '../src/virtio/device';
import { makeFrame } from './support/frames';
import { sendAll, sleep } from './support/queue-traffic';
import { withWorkerRig } from './support/worker-rig';

const COALESCE_US = 100_000;
const BURST = 4;
/** Sleeps until the out-of-buffers timeout has backed off to 200 ms (io-thread.ts: DEFER_MIN_MS doubling to SLEEP_MS). */
const DEFERRED_SLEEPS = 9;

function ring(index: number, base: number): QueueConfig {
  return { index, size: 256, kind: 'split', enabled: true, descAddr: base, driverAddr: base + 0x1000, deviceAddr: base + 0x2000 };
}

test('a receive-buffer kick that wakes a coalescing I/O thread out of buffers is served after the coalescing wait, with the buffers posted meanwhile and no second kick', async () => {
  await withWorkerRig('iorxwake', { spinRounds: 1, pollUs: 0, coalesceUs: COALESCE_US }, async ({ qb, memory, guest, runner }) => {
    const rx = ring(0, 0x10000);
    const tx = ring(1, 0x20000);
    const rxDrv = new SplitRingDriver(guest, { size: 256, descAddr: rx.descAddr, availAddr: rx.driverAddr, usedAddr: rx.deviceAddr }, { eventIdx: false });
    let next = 0;
    const post = (n: number): boolean => {
      for (let k = 0; k < n; k++, next++) rxDrv.add([{ addr: 0x400000 + next * 2048, len: 2048, write: true }]);
      return rxDrv.publish();
    };
    post(BURST);
    runner.start(
      { pair: 0, rx, tx, features: featureMask(VirtioFeature.VERSION_1), mergeable: false, offloads: { csum: false, tso: false } },
      { memory, signalUsed: () => {}, markNeedsReset: () => {} },
    );
    for (let i = 0; i < 200 && !runner.isRunning(0); i++) await sleep(5);
    assert.ok(runner.isRunning(0), 'the I/O thread serves the pair');
    // More frames than buffers: the device fills the first burst and runs out.
    await sendAll(qb, Array.from({ length: 8 * BURST }, (_, i) => makeFrame(i, 64, 7)));
    for (let i = 0; i < 300 && rxDrv.usedIdx() < BURST; i++) await sleep(10);
    assert.is(rxDrv.usedIdx(), BURST, 'the first buffers were filled');
    // Out of buffers, the thread sleeps with a timeout that backs off (1, 2, 4 ... 200 ms). A timeout firing between
    // the buffers' post and the kick would serve them at once, not through the kick: wait until it has backed off
    // past the coalescing wait (1 + 2 + ... + 128 ms), so the kick is what wakes it.
    const asleep = runner.counters(0)?.sleeps ?? 0;
    for (let i = 0; i < 300 && (runner.counters(0)?.sleeps ?? 0) < asleep + DEFERRED_SLEEPS; i++) await sleep(10);
    assert.ok((runner.counters(0)?.sleeps ?? 0) >= asleep + DEFERRED_SLEEPS, 'out of buffers, the I/O thread went to sleep');
    assert.ok(post(BURST), 'the sleeping I/O thread, out of buffers, asked for a kick (used->flags without NO_NOTIFY)');
    sys.eventfdWrite(runner.fds[0]!.rxKick, 1);
    await sleep(10);
    // A tenth of the coalescing wait later: woken (kicks off), nothing filled yet.
    assert.is(rxDrv.usedIdx(), BURST, 'served before the coalescing wait ended');
    assert.not.ok(post(2 * BURST), 'a kick was asked for during the coalescing wait');
    for (let i = 0; i < 300 && rxDrv.usedIdx() < 4 * BURST; i++) await sleep(10);
    assert.is(rxDrv.usedIdx(), 4 * BURST, 'every buffer posted during the wait was filled in the same wake-up');
    assert.is(runner.counters(0)!.kicksRead, 1, 'one kick for both bursts');
    await runner.stop(0);
    assert.ok(runner.stats(0)!.worker.coalescedUs >= 0.9 * COALESCE_US, JSON.stringify(runner.stats(0)!.worker));
  });
});

test.run();
