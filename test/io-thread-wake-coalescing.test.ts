// An I/O thread that coalesces (SHARED_CPU_POLICY: it shares its CPU with
// the vCPU) and is woken by a transmit kick first yields for the coalescing time, with
// kicks still off: what the driver posts meanwhile goes out in the same
// wake-up, without a second kick (README, "Queues and CPUs").
import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { featureMask, VirtioFeature } from 'virtio-spec-types';
import { SplitRingDriver } from '../src/fuzz/split-ring-driver';
import { sys } from '../src/native/sys';
import type { QueueConfig } from '../src/virtio/device';
import { frameSeq, frameTag, makeFrame } from './support/frames';
import { receive, sleep } from './support/queue-traffic';
import { withWorkerRig, type WorkerRig } from './support/worker-rig';

const HDR = 12;
const BURST = 8;
const COALESCE_US = 100_000;

function ring(index: number, base: number): QueueConfig {
  return { index, size: 256, kind: 'split', enabled: true, descAddr: base, driverAddr: base + 0x1000, deviceAddr: base + 0x2000 };
}

/**
 * Starts pair 0 on the rig with receive buffers posted (so the receive side waits for frames, none come, not on
 * short timeouts for buffers) and returns the driver of its transmit ring; neither ring uses EVENT_IDX.
 */
function startPair({ guest, memory, runner }: WorkerRig): SplitRingDriver {
  const rx = ring(0, 0x10000);
  const tx = ring(1, 0x20000);
  const rxDrv = new SplitRingDriver(guest, { size: 256, descAddr: rx.descAddr, availAddr: rx.driverAddr, usedAddr: rx.deviceAddr }, { eventIdx: false });
  for (let i = 0; i < 128; i++) rxDrv.add([{ addr: 0x400000 + i * 2048, len: 2048, write: true }]);
  rxDrv.publish();
  const txDrv = new SplitRingDriver(guest, { size: 256, descAddr: tx.descAddr, availAddr: tx.driverAddr, usedAddr: tx.deviceAddr }, { eventIdx: false });
  runner.start(
    { pair: 0, rx, tx, features: featureMask(VirtioFeature.VERSION_1), mergeable: false, offloads: { csum: false, tso: false } },
    { memory, signalUsed: () => {}, markNeedsReset: () => {} },
  );
  return txDrv;
}

/** Posts BURST frames numbered from `from` (64 B, tagged `tag`) on the transmit ring; true when the device asks for a kick. */
function postBurst(bytes: Uint8Array, txDrv: SplitRingDriver, from: number, tag: number): boolean {
  for (let i = from; i < from + BURST; i++) {
    const f = makeFrame(i, 64, tag);
    const addr = 0x100000 + i * 4096;
    bytes.fill(0, addr, addr + HDR);
    bytes.set(f, addr + HDR);
    txDrv.add([{ addr, len: HDR + f.length, write: false }]);
  }
  return txDrv.publish();
}

test('a transmit kick that wakes a coalescing I/O thread is served after the coalescing wait, with what the driver posted meanwhile and no second kick', async () => {
  await withWorkerRig('iowake', { spinRounds: 1, pollUs: 0, coalesceUs: COALESCE_US }, async (rig) => {
    const { qb, bytes, runner } = rig;
    const txDrv = startPair(rig);
    for (let i = 0; i < 200 && (runner.counters(0)?.sleeps ?? 0) === 0; i++) await sleep(10);
    assert.ok((runner.counters(0)?.sleeps ?? 0) > 0, 'the I/O thread went to sleep (nothing to send, nothing received)');
    // Its timed waits end on time: the timer slack is 1 µs, not the kernel's 50.
    assert.is(readFileSync(`/proc/${runner.threadId(0)}/timerslack_ns`, 'utf8').trim(), '1000');
    const post = (from: number): boolean => postBurst(bytes, txDrv, from, 9);
    assert.ok(post(0), 'the sleeping I/O thread asked for a kick');
    sys.eventfdWrite(runner.fds[0]!.txKick, 1);
    await sleep(10);
    // A tenth of the coalescing wait later: woken (kicks off), nothing served yet.
    assert.is(txDrv.usedIdx(), 0, 'served before the coalescing wait ended');
    assert.not.ok(post(BURST), 'a kick was asked for during the coalescing wait');
    const got = await receive(qb, 2 * BURST, 5000, (f) => frameSeq(f) >= 0 && frameTag(f) === 9);
    assert.is(got.length, 2 * BURST, 'both bursts reached the peer');
    for (let i = 0; i < 100 && txDrv.usedIdx() !== 2 * BURST; i++) await sleep(10);
    assert.is(txDrv.usedIdx(), 2 * BURST);
    assert.is(runner.counters(0)!.kicksRead, 1, 'one kick for both bursts');
    await runner.stop(0);
    // The wait is counted as such (not as a sleep in epoll): at least the one after the kick.
    assert.ok(runner.stats(0)!.worker.coalescedUs >= 0.9 * COALESCE_US, JSON.stringify(runner.stats(0)!.worker));
  });
});

test('a coalescing I/O thread with a poll bound naps through it with kicks off: a burst posted then needs no kick; after the bound it sleeps and asks for one', async () => {
  const POLL_US = 400_000;
  await withWorkerRig('ionap', { spinRounds: 1, pollUs: POLL_US, coalesceUs: 1000 }, async (rig) => {
    const { qb, bytes, runner } = rig;
    const txDrv = startPair(rig);
    let seq = 0;
    const post = (): boolean => postBurst(bytes, txDrv, (seq += BURST) - BURST, 7);
    const served = async (n: number): Promise<void> => {
      const got = await receive(qb, n, 5000, (f) => frameSeq(f) >= 0 && frameTag(f) === 7);
      assert.is(got.length, n, 'the burst reached the peer');
    };
    // Idle from the start: it naps through the bound, then sleeps with kicks armed.
    for (let i = 0; i < 300 && (runner.counters(0)?.sleeps ?? 0) === 0; i++) await sleep(10);
    assert.ok((runner.counters(0)?.sleeps ?? 0) > 0, 'the I/O thread went to sleep once the bound had passed');
    assert.ok(post(), 'a sleeping I/O thread asks for a kick');
    sys.eventfdWrite(runner.fds[0]!.txKick, 1);
    await served(BURST);
    // Within the bound after that traffic: napping, kicks still off.
    await sleep(20);
    assert.not.ok(post(), 'a kick was asked for while the I/O thread napped within its poll bound');
    await served(BURST);
    assert.is(runner.counters(0)!.kicksRead, 1, 'the second burst went out without a kick');
    // Past the bound: asleep, kicks armed again.
    await sleep(POLL_US / 1000 + 300);
    assert.ok(post(), 'past the poll bound the I/O thread sleeps and asks for a kick');
    sys.eventfdWrite(runner.fds[0]!.txKick, 1);
    await served(BURST);
    await runner.stop(0);
    assert.ok(runner.stats(0)!.worker.coalescedUs >= 0.5 * POLL_US, JSON.stringify(runner.stats(0)!.worker));
  });
});

test.run();
