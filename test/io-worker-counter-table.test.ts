// The counter table (src/io/pair-counters.ts) names every counter of the
// device and of the AF_XDP queue, and what the I/O worker counts crosses to
// the main thread by name: device drops, backend syscalls and refills, the
// worker's sleeps, ring-rule violations and which ring broke and why.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { featureMask, VirtioFeature } from 'virtio-spec-types';
import { QueueCounters } from '../src/backend/queue-counters';
import { SplitRingDriver } from '../src/fuzz/split-ring-driver';
import { BACKEND_COUNTERS, COUNTER_SLOTS, DEVICE_COUNTERS, GUEST_UMEM_COUNTERS, WORKER_COUNTERS } from '../src/io/pair-counters';
import { GuestUmemCounters } from '../src/backend/af-xdp/guest-umem-queue';
import { sys } from '../src/native/sys';
import type { QueueConfig } from '../src/virtio/device';
import { NetQueueCounters } from '../src/virtio/net/net-counters';
import { QUEUE_ERROR_COUNT } from '../src/virtio/queue';
import { frameSeq, frameTag, makeFrame } from './support/frames';
import { receive, sleep } from './support/queue-traffic';
import { withWorkerRig } from './support/worker-rig';

const HDR = 12;
const N = 40;

function ring(index: number, base: number): QueueConfig {
  return { index, size: 256, kind: 'split', enabled: true, descAddr: base, driverAddr: base + 0x1000, deviceAddr: base + 0x2000 };
}

const numberFields = (o: object): string[] =>
  Object.entries(o)
    .filter(([, v]) => typeof v === 'number')
    .map(([k]) => k)
    .sort();

test('the counter table names every device and AF_XDP queue counter, once', () => {
  assert.equal([...DEVICE_COUNTERS].sort(), numberFields(new NetQueueCounters()));
  assert.equal([...BACKEND_COUNTERS].sort(), numberFields(new QueueCounters()));
  assert.equal([...GUEST_UMEM_COUNTERS].sort(), numberFields(new GuestUmemCounters()));
  const all = [...DEVICE_COUNTERS, ...WORKER_COUNTERS, ...BACKEND_COUNTERS];
  assert.is(new Set(WORKER_COUNTERS).size, WORKER_COUNTERS.length);
  assert.is(COUNTER_SLOTS, all.length + QUEUE_ERROR_COUNT + GUEST_UMEM_COUNTERS.length);
});

test('device, worker, backend and ring-error counters and the broken ring cross from the I/O worker to the main thread', async () => {
  await withWorkerRig('ioctr', { spinRounds: 200 }, async ({ qb, bytes, memory, guest, runner }) => {
    let resets = 0;
    const rx = ring(0, 0x10000);
    const tx = ring(1, 0x20000);
    const txDrv = new SplitRingDriver(guest, { size: 256, descAddr: tx.descAddr, availAddr: tx.driverAddr, usedAddr: tx.deviceAddr }, { eventIdx: false });
    const features = featureMask(VirtioFeature.VERSION_1);
    runner.start(
      { pair: 0, rx, tx, features, mergeable: false, offloads: { csum: false, tso: false } },
      { memory, signalUsed: () => {}, markNeedsReset: () => void resets++ },
    );
    for (let i = 0; i < 100 && !runner.isRunning(0); i++) await sleep(10);
    const fds = runner.fds[0]!;
    // N frames, then one runt (shorter than header + Ethernet header: dropped and counted).
    for (let i = 0; i < N; i++) {
      const f = makeFrame(i, 64, 7);
      const addr = 0x100000 + i * 4096;
      bytes.fill(0, addr, addr + HDR);
      bytes.set(f, addr + HDR);
      txDrv.add([{ addr, len: HDR + f.length, write: false }]);
    }
    txDrv.add([{ addr: 0x300000, len: HDR + 4, write: false }]);
    txDrv.publish();
    sys.eventfdWrite(fds.txKick, 1);
    const got = await receive(qb, N, 5000, (f) => frameSeq(f) >= 0 && frameTag(f) === 7);
    assert.is(got.length, N);
    // Let the worker go idle (it sleeps after spinRounds), then break the TX ring: a head beyond Queue Size.
    for (let i = 0; i < 100 && (runner.counters(0)?.sleeps ?? 0) === 0; i++) await sleep(10);
    txDrv.offerHead(300);
    txDrv.publish();
    sys.eventfdWrite(fds.txKick, 1);
    for (let i = 0; i < 200 && resets === 0; i++) await sleep(10);
    assert.is(resets, 1, 'the broken ring asked for a device reset');
    await runner.stop(0);

    const s = runner.stats(0)!;
    assert.is(s.device.txFrames, N);
    assert.is(s.device.txDropRunt, 1);
    assert.is(s.device.rxFrames, 0);
    assert.ok(s.backend.txPackets >= N && s.backend.txKicks >= 1, JSON.stringify(s.backend));
    assert.ok(s.backend.fillRefills >= 1, 'the Fill ring was primed');
    assert.ok(s.worker.rounds > 0 && s.worker.sleeps > 0 && s.worker.wakeups > 0, JSON.stringify(s.worker));
    assert.ok(s.worker.kicksRead >= 1, JSON.stringify(s.worker));
    assert.equal(s.queueErrors, { HeadOutOfRange: 1 });
    assert.equal(s.broken, { cause: 'ring', rx: null, tx: 'HeadOutOfRange' });
    // The flat view keeps its names.
    assert.is(runner.counters(0)!.txDropRunt, 1);
  });
});

test.run();
