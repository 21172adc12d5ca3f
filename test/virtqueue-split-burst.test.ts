// Virtqueue.peekBurst / retireBurst / holdBurst: one-descriptor buffers read a
// burst at a time, everything else left to pop() (which judges it), nothing
// counted twice; held buffers are in flight until pushed.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BURST_HEAD, BURST_LEN, BURST_REGION, BURST_STRIDE, BURST_WRITABLE, BufferBurst } from '../src/virtio/queue/buffer-burst';
import { QueueError } from '../src/virtio/queue/queue-error';
import { BASE_GPA, REGION_SIZE, buffers, packedRig, splitRig } from './support/virtqueue-rig';

/** Field `f` of the burst's first `n` buffers. */
const field = (burst: BufferBurst, f: number, n: number): number[] => Array.from({ length: n }, (_, i) => burst.words[i * BURST_STRIDE + f]!);

test('a burst of one-descriptor buffers: read without taking, then retired used with 0 bytes', () => {
  const rig = splitRig({ size: 8 });
  const { queue, driver, layout, memory } = rig;
  const heads = [0, 1, 2].map((k) => driver.add([{ addr: layout.dataAddr + 64 * k, len: 40 + k, write: false }]));
  driver.publish();
  const burst = new BufferBurst(8);
  assert.is(queue.peekBurst(burst, 8), 3);
  assert.equal(field(burst, BURST_HEAD, 3), heads);
  assert.equal(field(burst, BURST_LEN, 3), [40, 41, 42]);
  assert.equal(field(burst, BURST_WRITABLE, 3), [0, 0, 0]);
  assert.is(memory.regionBase(field(burst, BURST_REGION, 2)[1]!) + burst.offset[1]!, layout.dataAddr + 64);
  assert.is(queue.peekBurst(burst, 8), 3, 'peeking takes nothing');
  queue.retireBurst(burst, 2);
  assert.is(queue.flush(), true);
  assert.equal(driver.pollUsed(), [{ id: heads[0], len: 0 }, { id: heads[1], len: 0 }]);
  assert.is(queue.peekBurst(burst, 8), 1, 'the one not retired is next');
  assert.is(field(burst, BURST_HEAD, 1)[0], heads[2]);
  assert.is(queue.peekBurst(burst, 0), 0, 'max bounds the burst');
  assert.not.ok(queue.broken);
  assert.ok(rig.canariesIntact());
});

test('a burst stops before a chain, which pop() takes whole', () => {
  const rig = splitRig({ size: 8 });
  const { queue, driver, layout, chain } = rig;
  const a = driver.add([{ addr: layout.dataAddr, len: 64, write: false }]);
  const b = driver.add(buffers(layout.dataAddr + 0x100, 2, 2));
  const c = driver.add([{ addr: layout.dataAddr + 0x200, len: 64, write: false }]);
  driver.publish();
  const burst = new BufferBurst(8);
  assert.is(queue.peekBurst(burst, 8), 1);
  queue.retireBurst(burst, 1);
  assert.is(queue.peekBurst(burst, 8), 0, 'the chain is for pop()');
  assert.ok(queue.pop(chain));
  assert.is(chain.headId, b);
  assert.is(chain.count, 2);
  queue.push(chain.headId, 0, chain.ringSlots);
  assert.is(queue.peekBurst(burst, 8), 1);
  assert.is(field(burst, BURST_HEAD, 1)[0], c);
  queue.retireBurst(burst, 1);
  queue.flush();
  assert.equal(driver.pollUsed().map((e) => e.id), [a, b, c], 'used in ring order');
});

test('a burst stops before an indirect buffer', () => {
  const rig = splitRig({ size: 8, indirect: true });
  const { queue, driver, layout, chain } = rig;
  driver.add([{ addr: layout.dataAddr, len: 64, write: false }], layout.tableAddr);
  driver.publish();
  const burst = new BufferBurst(8);
  assert.is(queue.peekBurst(burst, 8), 0);
  assert.ok(queue.pop(chain));
  assert.is(chain.count, 1);
});

test('an address outside guest memory: the burst stops before it, pop() stops the queue and counts it once', () => {
  const rig = splitRig({ size: 8 });
  const { queue, driver, layout, chain, memory } = rig;
  driver.add([{ addr: layout.dataAddr, len: 64, write: false }]);
  driver.add([{ addr: BASE_GPA + REGION_SIZE - 16, len: 64, write: false }]);
  driver.add([{ addr: 0x1_0000_0000_0000, len: 64, write: false }]);
  driver.publish();
  const burst = new BufferBurst(8);
  assert.is(queue.peekBurst(burst, 8), 1, 'only the buffer inside memory');
  queue.retireBurst(burst, 1);
  assert.is(queue.peekBurst(burst, 8), 0);
  assert.is(memory.outOfRange, 0, 'a burst counts nothing');
  assert.is(queue.pop(chain), false);
  assert.is(queue.error, QueueError.AddressOutOfRange);
  assert.is(memory.outOfRange, 1);
  assert.is(queue.peekBurst(burst, 8), 0, 'a stopped queue gives no bursts');
});

test('a head out of range is left to pop(), which stops the queue', () => {
  const rig = splitRig({ size: 8 });
  const { queue, driver, chain } = rig;
  driver.offerHead(8);
  driver.publish();
  const burst = new BufferBurst(8);
  assert.is(queue.peekBurst(burst, 8), 0);
  assert.is(queue.pop(chain), false);
  assert.is(queue.error, QueueError.HeadOutOfRange);
});

test('a burst never holds more buffers than the ring has descriptors the device does not hold', () => {
  const rig = splitRig({ size: 4 });
  const { queue, driver, layout, chain } = rig;
  for (let k = 0; k < 3; k++) driver.add([{ addr: layout.dataAddr + 64 * k, len: 64, write: false }]);
  driver.publish();
  assert.ok(queue.pop(chain));
  assert.ok(queue.pop(chain));
  // Heads offered again while the device holds them: avail runs ahead of what the ring can hold.
  driver.offerHead(0);
  driver.offerHead(1);
  driver.publish();
  const burst = new BufferBurst(8);
  assert.is(queue.peekBurst(burst, 8), 2, 'four descriptors, two held: room for two');
});

test('retiring more than was peeked is device misuse and stops the queue', () => {
  const rig = splitRig({ size: 8 });
  const { queue, driver, layout } = rig;
  driver.add([{ addr: layout.dataAddr, len: 64, write: false }]);
  driver.publish();
  const burst = new BufferBurst(8);
  assert.is(queue.peekBurst(burst, 8), 1);
  queue.retireBurst(burst, 2);
  assert.is(queue.error, QueueError.DeviceMisuse);
});

test('held buffers stay in flight until pushed: none used at holding, each used once pushed, and they count against the ring', () => {
  const rig = splitRig({ size: 4 });
  const { queue, driver, layout } = rig;
  const heads = [0, 1, 2].map((k) => driver.add([{ addr: layout.dataAddr + 64 * k, len: 64, write: false }]));
  driver.publish();
  const burst = new BufferBurst(8);
  assert.is(queue.peekBurst(burst, 8), 3);
  queue.holdBurst(burst, 2);
  assert.is(queue.flush(), false, 'holding writes no used element');
  assert.equal(driver.pollUsed(), []);
  assert.is(queue.peekBurst(burst, 8), 1, 'the one not held is next');
  assert.is(field(burst, BURST_HEAD, 1)[0], heads[2]);
  // The two held and one more offered again while held: only size - held = 2 may be peeked.
  driver.offerHead(heads[0]!);
  driver.offerHead(heads[1]!);
  driver.publish();
  assert.is(queue.peekBurst(burst, 8), 2, 'four descriptors, two held: room for two');
  queue.retireBurst(burst, 1);
  // Pushed out of order (the kernel completed the second first): used in push order, retired one first.
  queue.push(heads[1]!, 0, 1);
  queue.push(heads[0]!, 0, 1);
  assert.is(queue.flush(), true);
  assert.equal(driver.pollUsed().map((e) => e.id), [heads[2], heads[1], heads[0]]);
  assert.not.ok(queue.broken);
  assert.ok(rig.canariesIntact());
});

test('holding more than was peeked, or pushing more than is held, is device misuse and stops the queue', () => {
  const rig = splitRig({ size: 8 });
  const { queue, driver, layout } = rig;
  const head = driver.add([{ addr: layout.dataAddr, len: 64, write: false }]);
  driver.publish();
  const burst = new BufferBurst(8);
  assert.is(queue.peekBurst(burst, 8), 1);
  queue.holdBurst(burst, 1);
  queue.push(head, 0, 1);
  assert.not.ok(queue.broken);
  queue.push(head, 0, 1);
  assert.is(queue.error, QueueError.DeviceMisuse, 'a second push of the one held buffer');

  const again = splitRig({ size: 8 });
  again.driver.add([{ addr: again.layout.dataAddr, len: 64, write: false }]);
  again.driver.publish();
  assert.is(again.queue.peekBurst(burst, 8), 1);
  again.queue.holdBurst(burst, 2);
  assert.is(again.queue.error, QueueError.DeviceMisuse);
});

test('packed rings give no bursts: every buffer goes by pop()', () => {
  const rig = packedRig({ size: 8 });
  const { queue, driver, layout, chain } = rig;
  driver.add([{ addr: layout.dataAddr, len: 64, write: false }]);
  driver.publish();
  const burst = new BufferBurst(8);
  assert.is(queue.peekBurst(burst, 8), 0);
  queue.retireBurst(burst, 0);
  queue.holdBurst(burst, 0);
  assert.not.ok(queue.broken);
  assert.ok(queue.pop(chain));
});

test.run();
