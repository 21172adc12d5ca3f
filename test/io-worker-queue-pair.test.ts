// A queue pair serviced by its own I/O worker thread against a real AF_XDP
// socket: the main thread plays the guest (rings in shared memory, kicks
// through eventfds), the worker moves frames both ways and signals through
// the call eventfds, and stops cleanly.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { featureMask, VirtioFeature } from 'virtio-spec-types';
import { SplitRingDriver } from '../src/fuzz/split-ring-driver';
import type { QueueConfig } from '../src/virtio/device';
import { frameSeq, frameTag, makeFrame } from './support/frames';
import { receive, sendAll, sleep } from './support/queue-traffic';
import { withWorkerRig } from './support/worker-rig';
import { sys } from '../src/native/sys';

const N = 100;
const HDR = 12;

function ring(index: number, base: number): QueueConfig {
  return { index, size: 256, kind: 'split', enabled: true, descAddr: base, driverAddr: base + 0x1000, deviceAddr: base + 0x2000 };
}

test('an I/O worker moves frames both ways between guest rings and AF_XDP', async () => {
  await withWorkerRig('iow', { spinRounds: 200 }, async ({ qb, bytes, memory, guest, runner }) => {
    let broken = false;
    const rx = ring(0, 0x10000);
    const tx = ring(1, 0x20000);
    const rxDrv = new SplitRingDriver(guest, { size: 256, descAddr: rx.descAddr, availAddr: rx.driverAddr, usedAddr: rx.deviceAddr }, { eventIdx: false });
    const txDrv = new SplitRingDriver(guest, { size: 256, descAddr: tx.descAddr, availAddr: tx.driverAddr, usedAddr: tx.deviceAddr }, { eventIdx: false });
    const features = featureMask(VirtioFeature.VERSION_1);
    runner.start(
      { pair: 0, rx, tx, features, mergeable: false, offloads: { csum: false, tso: false } },
      { memory, signalUsed: () => {}, markNeedsReset: () => (broken = true) },
    );
    for (let i = 0; i < 100 && !runner.isRunning(0); i++) await sleep(10);
    assert.ok(runner.isRunning(0), 'worker started');
    const fds = runner.fds[0]!;

    // Guest -> wire.
    for (let i = 0; i < N; i++) {
      const f = makeFrame(i, 60 + i * 10, 3);
      const addr = 0x100000 + i * 4096;
      bytes.fill(0, addr, addr + HDR);
      bytes.set(f, addr + HDR);
      txDrv.add([{ addr, len: HDR + f.length, write: false }]);
    }
    txDrv.publish();
    sys.eventfdWrite(fds.txKick, 1);
    const got = await receive(qb, N, 5000, (f) => frameSeq(f) >= 0 && frameTag(f) === 3);
    assert.is(got.length, N, `peer received ${got.length}`);
    got.forEach((f, i) => assert.equal(f, makeFrame(i, 60 + i * 10, 3)));
    for (let i = 0; i < 50 && txDrv.pollUsed().length === 0; i++) await sleep(10);
    assert.ok(sys.eventfdRead(fds.txCall) > 0, 'used TX buffers signalled through the call eventfd');

    // Wire -> guest.
    for (let i = 0; i < 128; i++) rxDrv.add([{ addr: 0x400000 + i * 4096, len: 4096, write: true }]);
    rxDrv.publish();
    sys.eventfdWrite(fds.rxKick, 1);
    await sendAll(qb, Array.from({ length: N }, (_, i) => makeFrame(i, 100 + i, 4)));
    const used: { id: number; len: number }[] = [];
    for (let i = 0; i < 300 && used.length < N; i++) {
      used.push(...rxDrv.pollUsed());
      if (used.length < N) await sleep(10);
    }
    const mine = used
      .map((u) => bytes.slice(0x400000 + u.id * 4096 + HDR, 0x400000 + u.id * 4096 + u.len))
      .filter((f) => frameSeq(f) >= 0 && frameTag(f) === 4);
    assert.is(mine.length, N, `guest received ${mine.length}`);
    mine.forEach((f, i) => assert.equal(f, makeFrame(i, 100 + i, 4)));
    assert.ok(sys.eventfdRead(fds.rxCall) > 0, 'used RX buffers signalled');
    const live = runner.counters(0)!;
    assert.ok(live.txFrames >= N && live.rxFrames >= N, JSON.stringify(live));
    assert.not.ok(broken);
  });
});

test('a receive side out of buffers asks the driver for a kick only once 64 are back, and still takes fewer (EVENT_IDX)', async () => {
  await withWorkerRig('iowk', { spinRounds: 200 }, async ({ qb, memory, guest, runner }) => {
    const rx = ring(0, 0x10000);
    const tx = ring(1, 0x20000);
    const rxDrv = new SplitRingDriver(guest, { size: 256, descAddr: rx.descAddr, availAddr: rx.driverAddr, usedAddr: rx.deviceAddr }, { eventIdx: true });
    const features = featureMask(VirtioFeature.VERSION_1, VirtioFeature.EVENT_IDX);
    runner.start({ pair: 0, rx, tx, features, mergeable: false, offloads: { csum: false, tso: false } }, { memory, signalUsed: () => {}, markNeedsReset: () => {} });
    for (let i = 0; i < 100 && !runner.isRunning(0); i++) await sleep(10);
    const fds = runner.fds[0]!;
    let next = 0;
    const post = (n: number): boolean => {
      for (let k = 0; k < n; k++, next++) rxDrv.add([{ addr: 0x400000 + (next % 128) * 4096, len: 4096, write: true }]);
      return rxDrv.publish();
    };
    const used = async (n: number): Promise<number> => {
      let got = 0;
      for (let i = 0; i < 300 && got < n; i++) {
        got += rxDrv.pollUsed().length;
        if (got < n) await sleep(10);
      }
      return got;
    };
    const availEvent = (): number => memory.readU16(rx.deviceAddr + 4 + 8 * 256);
    assert.ok(post(8), 'the first buffers kick');
    sys.eventfdWrite(fds.rxKick, 1);
    // 80 frames for 8 buffers: the rest wait on the socket, the receive side is out of buffers.
    await sendAll(qb, Array.from({ length: 80 }, (_, i) => makeFrame(i, 100, 5)));
    assert.is(await used(8), 8, 'the first 8 frames land');
    // Once the worker sleeps, avail_event points 64 entries past the last one it read.
    for (let i = 0; i < 100 && availEvent() !== 8 + 63; i++) await sleep(10);
    assert.is(availEvent(), 8 + 63, 'avail_event at the 64th buffer to come');
    assert.is(post(8), false, '8 buffers back: no kick asked');
    assert.is(await used(8), 8, 'fewer than a batch are still used (the worker also wakes on a timeout)');
    // The next refills, 8 at a time: one kick, at the one that reaches a batch past the last buffer read.
    for (let i = 0; i < 100 && availEvent() !== 16 + 63; i++) await sleep(10);
    assert.is(availEvent(), 16 + 63);
    const kicks = Array.from({ length: 8 }, () => post(8));
    assert.equal(kicks, [false, false, false, false, false, false, false, true], `kicks per refill: ${kicks}`);
  });
});

test.run();
