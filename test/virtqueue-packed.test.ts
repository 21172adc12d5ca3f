import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DescFlags, PackedDesc, PackedDescFlags, RingEventFlags } from 'virtio-spec-types';
import { PackedQueue } from '../src/virtio/queue/packed-queue';
import { buffers, makeGuest, packedRig } from './support/virtqueue-rig';

test('one buffer: pop, push, flush, used by the driver', () => {
  const rig = packedRig({ size: 8 });
  const { memory, queue, driver, chain, layout } = rig;
  memory.write(layout.dataAddr, Uint8Array.of(9, 8, 7), 0, 3);
  assert.is(queue.pop(chain), false, 'zeroed ring: nothing available');
  const id = driver.add([{ addr: layout.dataAddr, len: 3, write: false }]);
  assert.ok(queue.hasAvailable());
  assert.ok(queue.pop(chain));
  assert.is(chain.headId, id);
  assert.is(chain.count, 1);
  assert.is(chain.ringSlots, 1);
  assert.is(chain.readableLength, 3);
  const bytes = memory.regionBytes(chain.region[0]);
  assert.equal(Array.from(bytes.subarray(chain.offset[0], chain.offset[0] + 3)), [9, 8, 7]);
  assert.is(queue.pop(chain), false);
  queue.push(chain.headId, 0, chain.ringSlots);
  assert.equal(driver.pollUsed(), [], 'not visible before flush');
  assert.ok(queue.flush());
  assert.equal(driver.pollUsed(), [{ id, len: 0, written: false }]);
  assert.is(queue.nextAvail, 1 | (1 << 15));
  assert.is(queue.nextUsed, 1 | (1 << 15));
  assert.ok(rig.canariesIntact());
});

test('lists of 1..size descriptors; Buffer ID from the last descriptor; WRITE flag on used', () => {
  const size = 12; // not a power of 2: allowed for packed rings
  const rig = packedRig({ size });
  const { queue, driver, chain, layout } = rig;
  for (let n = 1; n <= size; n++) {
    for (let readable = 0; readable <= n; readable++) {
      const bufs = buffers(layout.dataAddr, n, readable, 40);
      const id = driver.add(bufs);
      assert.ok(id >= 0);
      assert.ok(queue.pop(chain), `n=${n} readable=${readable}`);
      assert.is(chain.headId, id);
      assert.is(chain.count, n);
      assert.is(chain.ringSlots, n);
      assert.is(chain.readableCount, readable);
      for (let k = 0; k < n; k++) {
        assert.is(chain.addr[k], bufs[k].addr);
        assert.is(chain.writable[k], bufs[k].write ? 1 : 0);
      }
      const written = chain.writableLength > 0 ? 1 : 0;
      queue.push(chain.headId, written, chain.ringSlots);
      queue.flush();
      assert.equal(driver.pollUsed(), [{ id, len: written, written: written > 0 }]);
    }
  }
  assert.not.ok(queue.broken);
});

test('a batch becomes visible at once: the first used descriptor flags are written at flush', () => {
  const rig = packedRig({ size: 8 });
  const { memory, queue, driver, chain, layout } = rig;
  const ids = [0, 1, 2].map((k) => driver.add([{ addr: layout.dataAddr + 64 * k, len: 64, write: true }]));
  const popped: number[] = [];
  while (queue.pop(chain)) popped.push(chain.headId);
  assert.equal(popped, ids);
  queue.push(ids[1], 5, 1);
  queue.push(ids[2], 6, 1);
  const flags0 = memory.readU16(layout.descAddr + PackedDesc.FLAGS);
  assert.ok((flags0 & PackedDescFlags.USED) === 0, 'slot 0 still looks available');
  assert.equal(driver.pollUsed(), []);
  queue.flush();
  assert.equal(driver.pollUsed(), [
    { id: ids[1], len: 5, written: true },
    { id: ids[2], len: 6, written: true },
  ]);
  queue.push(ids[0], 7, 1);
  queue.flush();
  assert.equal(driver.pollUsed(), [{ id: ids[0], len: 7, written: true }]);
});

test('out-of-order completion of multi-slot lists skips the right number of slots', () => {
  const rig = packedRig({ size: 8 });
  const { queue, driver, chain, layout } = rig;
  const a = driver.add(buffers(layout.dataAddr, 3, 1));
  const b = driver.add(buffers(layout.dataAddr, 1, 0));
  const c = driver.add(buffers(layout.dataAddr, 2, 2));
  const popped: Array<[number, number]> = [];
  while (queue.pop(chain)) popped.push([chain.headId, chain.ringSlots]);
  assert.equal(popped, [[a, 3], [b, 1], [c, 2]]);
  for (const k of [2, 0, 1]) queue.push(popped[k][0], 1, popped[k][1]);
  queue.flush();
  assert.equal(driver.pollUsed().map((u) => u.id), [c, a, b]);
  assert.is(driver.freeDescriptors, 8);
});

test('wrap counters: 70,000 lists over a 7-slot ring, lists wrapping mid-way', () => {
  const rig = packedRig({ size: 7 });
  const { queue, driver, chain, layout } = rig;
  let sent = 0;
  let received = 0;
  let slotsSent = 0;
  while (received < 70_000) {
    for (;;) {
      const n = 1 + (sent % 3);
      if (driver.add(buffers(layout.dataAddr, n, 1, 16)) < 0) break;
      sent++;
      slotsSent += n;
    }
    let k = 0;
    while (queue.pop(chain)) {
      queue.push(chain.headId, chain.writableLength, chain.ringSlots);
      if (++k % 2 === 0) queue.flush();
    }
    queue.flush();
    received += driver.pollUsed().length;
  }
  assert.is(received, sent);
  const laps = Math.floor(slotsSent / 7);
  const expected = (slotsSent % 7) | ((laps % 2 === 0 ? 1 : 0) << 15);
  assert.is(queue.nextAvail, expected);
  assert.is(queue.nextUsed, expected);
  assert.not.ok(queue.broken);
});

test('indirect table: one ring slot, all entries in order, NEXT and ids inside ignored', () => {
  const rig = packedRig({ size: 4, indirect: true });
  const { memory, queue, driver, chain, layout } = rig;
  const bufs = buffers(layout.dataAddr, 4, 1, 50);
  const id = driver.add(bufs, layout.tableAddr);
  memory.writeU16(layout.tableAddr + PackedDesc.FLAGS, DescFlags.NEXT); // reserved inside a table: ignored
  memory.writeU16(layout.tableAddr + PackedDesc.ID, 999);
  assert.ok(queue.pop(chain));
  assert.is(chain.headId, id);
  assert.is(chain.count, 4);
  assert.is(chain.ringSlots, 1);
  assert.is(chain.readableCount, 1);
  assert.is(chain.writableLength, 150);
  queue.push(id, 150, 1);
  queue.flush();
  assert.equal(driver.pollUsed(), [{ id, len: 150, written: true }]);
  assert.not.ok(queue.broken);
});

test('undo, including back across the ring end', () => {
  const rig = packedRig({ size: 4 });
  const { queue, driver, chain, layout } = rig;
  const first = driver.add(buffers(layout.dataAddr, 3, 1));
  assert.ok(queue.pop(chain));
  queue.push(first, 0, 3);
  queue.flush();
  driver.pollUsed();
  const wrapping = driver.add(buffers(layout.dataAddr, 2, 1)); // slots 3 and 0: wraps
  assert.ok(queue.pop(chain));
  assert.is(chain.headId, wrapping);
  assert.is(queue.nextAvail, 1 | (0 << 15));
  assert.ok(queue.undo());
  assert.is(queue.nextAvail, 3 | (1 << 15));
  assert.is(queue.undo(), false);
  assert.ok(queue.pop(chain));
  assert.is(chain.headId, wrapping);
  assert.is(chain.ringSlots, 2);
  queue.push(wrapping, 0, 2);
  queue.flush();
  assert.equal(driver.pollUsed().map((u) => u.id), [wrapping]);
  assert.not.ok(queue.broken);
});

test('driver event suppression: DISABLE, ENABLE, and DESC offset/wrap across the ring end (§2.8.10)', () => {
  const rig = packedRig({ size: 4, eventIdx: true });
  const { queue, driver, chain, layout } = rig;
  const complete = (n: number): boolean => {
    for (let k = 0; k < n; k++) driver.add([{ addr: layout.dataAddr, len: 8, write: true }]);
    for (let k = 0; k < n; k++) {
      assert.ok(queue.pop(chain));
      queue.push(chain.headId, 8, 1);
    }
    const notify = queue.flush();
    driver.pollUsed();
    return notify;
  };
  driver.setDriverEvent(RingEventFlags.DISABLE);
  assert.is(complete(1), false);
  driver.setDriverEvent(RingEventFlags.ENABLE);
  assert.ok(complete(1));
  // Device at slot 2, wrap 1. Ask for a notification once slot 1 of the next lap (wrap 0) is used.
  driver.setDriverEvent(RingEventFlags.DESC, 1, 0);
  assert.is(complete(2), false, 'slots 2,3 used: event not reached');
  assert.is(complete(1), false, 'slot 0 (wrap 0) used: not yet');
  assert.ok(complete(1), 'slot 1 (wrap 0) used: notify');
  // Now at slot 2, wrap 0. An event at slot 3 of this lap, reached by a batch that wraps (3, 0, 1).
  driver.setDriverEvent(RingEventFlags.DESC, 3, 0);
  assert.ok(complete(3), 'batch crossing the ring end passes slot 3 (wrap 0)');
  // Now at slot 2, wrap 1. An event at slot 0 of this lap was passed already.
  driver.setDriverEvent(RingEventFlags.DESC, 0, 1);
  assert.is(complete(1), false);
  // DESC without EVENT_IDX negotiated means nothing: notify.
  const plain = packedRig({ size: 4, eventIdx: false });
  plain.driver.add([{ addr: plain.layout.dataAddr, len: 8, write: true }]);
  plain.driver.setDriverEvent(RingEventFlags.DESC, 3, 0);
  assert.ok(plain.queue.pop(plain.chain));
  plain.queue.push(plain.chain.headId, 0, 1);
  assert.ok(plain.queue.flush());
  assert.not.ok(queue.broken);
});

test('device event suppression and the re-check after enabling, without and with EVENT_IDX', () => {
  const rig = packedRig({ size: 4 });
  const { queue, driver, chain, layout } = rig;
  queue.disableNotifications();
  assert.is(driver.deviceEvent(), RingEventFlags.DISABLE << 16);
  driver.add([{ addr: layout.dataAddr, len: 8, write: true }]);
  assert.is(driver.publish(), false, 'no kick while disabled');
  assert.ok(queue.enableNotifications(), 're-check finds the buffer added meanwhile');
  assert.is(driver.deviceEvent(), RingEventFlags.ENABLE << 16);
  assert.ok(queue.pop(chain));
  assert.is(queue.enableNotifications(), false);
  driver.add([{ addr: layout.dataAddr, len: 8, write: true }]);
  assert.ok(driver.publish());

  const ev = packedRig({ size: 4, eventIdx: true });
  // Walk the device to slot 3 (wrap 1) so the next lap is one add away.
  for (let k = 0; k < 3; k++) {
    ev.driver.add([{ addr: ev.layout.dataAddr, len: 8, write: true }]);
    assert.ok(ev.queue.pop(ev.chain));
    ev.queue.push(ev.chain.headId, 0, 1);
  }
  ev.queue.flush();
  ev.driver.pollUsed();
  ev.driver.publish();
  assert.is(ev.queue.enableNotifications(), false);
  assert.is(ev.driver.deviceEvent(), (RingEventFlags.DESC << 16) | 3 | (1 << 15));
  ev.driver.add([{ addr: ev.layout.dataAddr, len: 8, write: true }]);
  assert.ok(ev.driver.publish(), 'slot 3 (wrap 1) made available: kick');
  ev.driver.add([{ addr: ev.layout.dataAddr, len: 8, write: true }]);
  assert.is(ev.driver.publish(), false, 'slot 0 (wrap 0): the device did not ask');
  assert.ok(ev.queue.pop(ev.chain));
  assert.ok(ev.queue.pop(ev.chain));
  assert.is(ev.queue.enableNotifications(), false);
  assert.is(ev.driver.deviceEvent(), (RingEventFlags.DESC << 16) | 1 | (0 << 15));
});

test('resume point (availBase / usedBase) is honoured', () => {
  const guest = makeGuest();
  const base = 0x10_0000;
  const q = new PackedQueue(
    guest.memory,
    { size: 8, descAddr: base, driverAddr: base + 0x100, deviceAddr: base + 0x104 },
    { features: { eventIdx: false, indirect: false }, availBase: 5, usedBase: 5 },
  );
  assert.is(q.nextAvail, 5);
  assert.is(q.nextUsed, 5);
  assert.not.ok(q.broken);
});

test('mark/rewind across the ring end restores position and wrap counter', () => {
  const rig = packedRig({ size: 5 });
  const { queue, driver, chain, layout } = rig;
  const warm = driver.add(buffers(layout.dataAddr, 3, 0));
  assert.ok(queue.pop(chain));
  queue.push(warm, 0, 3);
  queue.flush();
  driver.pollUsed();
  const ids = [driver.add(buffers(layout.dataAddr, 2, 0)), driver.add(buffers(layout.dataAddr, 2, 1))]; // slots 3-4, 0-1
  queue.mark();
  const start = queue.nextAvail;
  assert.ok(queue.pop(chain));
  assert.ok(queue.pop(chain));
  assert.is(queue.nextAvail, 2 | (0 << 15));
  assert.is(queue.rewind(), 2);
  assert.is(queue.nextAvail, start);
  const again: number[] = [];
  while (queue.pop(chain)) again.push(chain.headId);
  assert.equal(again, ids);
  queue.push(ids[0], 0, 2);
  queue.push(ids[1], 0, 2);
  queue.flush();
  assert.equal(driver.pollUsed().map((u) => u.id), ids);
  assert.not.ok(queue.broken);
});

test.run();
