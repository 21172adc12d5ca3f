import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DescFlags, SplitUsed, VIRTQ_USED_F_NO_NOTIFY, splitAvailEventOffset } from 'virtio-spec-types';
import { DescriptorChain } from '../src/virtio/queue/descriptor-chain';
import { QueueError } from '../src/virtio/queue/queue-error';
import { buffers, splitRig } from './support/virtqueue-rig';

test('one readable descriptor: pop, push, flush, used by the driver', () => {
  const rig = splitRig({ size: 8 });
  const { memory, queue, driver, chain, layout } = rig;
  memory.write(layout.dataAddr, Uint8Array.of(1, 2, 3, 4), 0, 4);
  const head = driver.add([{ addr: layout.dataAddr, len: 4, write: false }]);
  assert.is(queue.pop(chain), false, 'nothing before avail->idx is published');
  driver.publish();
  assert.ok(queue.hasAvailable());
  assert.ok(queue.pop(chain));
  assert.is(chain.headId, head);
  assert.is(chain.count, 1);
  assert.is(chain.ringSlots, 1);
  assert.is(chain.readableCount, 1);
  assert.is(chain.readableLength, 4);
  assert.is(chain.writableLength, 0);
  assert.is(chain.addr[0], layout.dataAddr);
  assert.is(chain.writable[0], 0);
  // region/offset give the bytes without another lookup.
  const bytes = memory.regionBytes(chain.region[0]);
  assert.equal(Array.from(bytes.subarray(chain.offset[0], chain.offset[0] + 4)), [1, 2, 3, 4]);
  assert.is(queue.pop(chain), false);
  queue.push(chain.headId, 0, chain.ringSlots);
  assert.is(driver.usedIdx(), 0, 'not visible before flush');
  assert.ok(queue.flush(), 'first flush notifies');
  assert.equal(driver.pollUsed(), [{ id: head, len: 0 }]);
  assert.is(queue.flush(), false, 'nothing pushed: no notification');
  assert.not.ok(queue.broken);
  assert.ok(rig.canariesIntact());
});

test('chains of 1..size descriptors, readable then writable, round-trip', () => {
  const size = 16;
  const rig = splitRig({ size });
  const { queue, driver, chain, layout } = rig;
  for (let n = 1; n <= size; n++) {
    for (let readable = 0; readable <= n; readable++) {
      const bufs = buffers(layout.dataAddr, n, readable, 32 + n);
      const head = driver.add(bufs);
      assert.ok(head >= 0);
      driver.publish();
      assert.ok(queue.pop(chain), `n=${n} readable=${readable}`);
      assert.is(chain.headId, head);
      assert.is(chain.count, n);
      assert.is(chain.ringSlots, n);
      assert.is(chain.readableCount, readable);
      assert.is(chain.readableLength, readable * (32 + n));
      assert.is(chain.writableLength, (n - readable) * (32 + n));
      for (let k = 0; k < n; k++) {
        assert.is(chain.addr[k], bufs[k].addr);
        assert.is(chain.len[k], bufs[k].len);
        assert.is(chain.writable[k], bufs[k].write ? 1 : 0);
      }
      queue.push(chain.headId, chain.writableLength, chain.ringSlots);
      queue.flush();
      assert.equal(driver.pollUsed(), [{ id: head, len: chain.writableLength }]);
      assert.is(driver.freeDescriptors, size);
    }
  }
  assert.not.ok(queue.broken);
  assert.ok(rig.canariesIntact());
});

test('push is batched: used->idx moves once per flush, elements in completion order', () => {
  const rig = splitRig({ size: 8 });
  const { queue, driver, chain, layout } = rig;
  const heads = [0, 1, 2].map((k) => driver.add([{ addr: layout.dataAddr + 64 * k, len: 64, write: true }]));
  driver.publish();
  const popped: number[] = [];
  while (queue.pop(chain)) popped.push(chain.headId);
  assert.equal(popped, heads);
  queue.push(popped[2], 30, 1);
  queue.push(popped[0], 10, 1);
  assert.is(driver.usedIdx(), 0);
  queue.flush();
  assert.is(driver.usedIdx(), 2);
  queue.push(popped[1], 20, 1);
  queue.flush();
  assert.equal(driver.pollUsed(), [
    { id: heads[2], len: 30 },
    { id: heads[0], len: 10 },
    { id: heads[1], len: 20 },
  ]);
});

test('indices wrap past 65536 (started near the wrap, then 70,000 buffers in varying batches)', () => {
  for (const base of [0xfffa, 0]) {
    const rig = splitRig({ size: 32, base });
    const { queue, driver, chain, layout } = rig;
    let sent = 0;
    let received = 0;
    let batch = 1;
    while (received < 70_000) {
      for (let k = 0; k < batch; k++) {
        const n = 1 + ((sent + k) % 3);
        if (driver.add(buffers(layout.dataAddr, n, 1, 16)) < 0) break;
        sent++;
      }
      driver.publish();
      while (queue.pop(chain)) queue.push(chain.headId, chain.writableLength, chain.ringSlots);
      queue.flush();
      received += driver.pollUsed().length;
      batch = 1 + ((batch * 7) % 11);
    }
    assert.is(received, sent);
    assert.is(queue.nextAvail, (base + sent) & 0xffff);
    assert.is(queue.nextUsed, (base + sent) & 0xffff);
    assert.not.ok(queue.broken);
  }
});

test('indirect table, alone and after direct descriptors (§2.7.5.3.2)', () => {
  const rig = splitRig({ size: 8, indirect: true });
  const { memory, queue, driver, chain, layout } = rig;
  const bufs = buffers(layout.dataAddr, 5, 2, 100);
  const head = driver.add(bufs, layout.tableAddr);
  driver.publish();
  assert.ok(queue.pop(chain));
  assert.is(chain.headId, head);
  assert.is(chain.count, 5);
  assert.is(chain.ringSlots, 1);
  assert.is(chain.readableCount, 2);
  assert.equal(Array.from(chain.addr.subarray(0, 5)), bufs.map((b) => b.addr));
  queue.push(head, 300, 1);
  queue.flush();
  assert.equal(driver.pollUsed(), [{ id: head, len: 300 }]);

  // A readable direct descriptor, then one pointing at a table of two writable entries.
  driver.writeDescriptor(3, layout.dataAddr, 10, DescFlags.NEXT, 4);
  driver.writeDescriptor(4, layout.tableAddr + 0x100, 32, DescFlags.INDIRECT | DescFlags.WRITE, 0); // WRITE ignored
  const t = layout.tableAddr + 0x100;
  memory.writeU64(t, layout.dataAddr + 0x100);
  memory.writeU32(t + 8, 20);
  memory.writeU16(t + 12, DescFlags.WRITE | DescFlags.NEXT);
  memory.writeU16(t + 14, 1);
  memory.writeU64(t + 16, layout.dataAddr + 0x200);
  memory.writeU32(t + 24, 30);
  memory.writeU16(t + 28, DescFlags.WRITE);
  driver.offerHead(3);
  driver.publish();
  assert.ok(queue.pop(chain));
  assert.is(chain.headId, 3);
  assert.is(chain.count, 3);
  assert.is(chain.ringSlots, 2);
  assert.is(chain.readableLength, 10);
  assert.is(chain.writableLength, 50);
  assert.not.ok(queue.broken);
});

test('undo offers the last popped chain again, once', () => {
  const rig = splitRig({ size: 4 });
  const { queue, driver, chain, layout } = rig;
  assert.is(queue.undo(), false, 'nothing popped yet');
  const a = driver.add([{ addr: layout.dataAddr, len: 8, write: true }]);
  const b = driver.add([{ addr: layout.dataAddr + 8, len: 8, write: true }]);
  driver.publish();
  assert.ok(queue.pop(chain));
  assert.is(chain.headId, a);
  assert.ok(queue.undo());
  assert.is(queue.undo(), false, 'only the last pop');
  assert.ok(queue.pop(chain));
  assert.is(chain.headId, a);
  assert.ok(queue.pop(chain));
  assert.is(chain.headId, b);
  queue.push(a, 8, 1);
  assert.ok(queue.undo(), 'b can still be undone after a was pushed');
  assert.ok(queue.pop(chain));
  assert.is(chain.headId, b);
  queue.push(b, 8, 1);
  assert.is(queue.undo(), false, 'nothing in flight');
  queue.flush();
  assert.equal(driver.pollUsed().map((u) => u.id), [a, b]);
  assert.not.ok(queue.broken);
});

test('notifications without EVENT_IDX: used->flags NO_NOTIFY and avail->flags NO_INTERRUPT', () => {
  const rig = splitRig({ size: 8 });
  const { memory, queue, driver, chain, layout } = rig;
  const usedFlags = (): number => memory.readU16(layout.deviceAddr + SplitUsed.FLAGS);
  queue.disableNotifications();
  assert.is(usedFlags(), VIRTQ_USED_F_NO_NOTIFY);
  driver.add([{ addr: layout.dataAddr, len: 8, write: true }]);
  assert.is(driver.publish(), false, 'device asked not to be notified');
  // Re-check after enabling: the buffer arrived while notifications were off.
  assert.ok(queue.enableNotifications());
  assert.is(usedFlags(), 0);
  assert.ok(queue.pop(chain));
  assert.is(queue.enableNotifications(), false, 'ring empty: really wait');
  driver.add([{ addr: layout.dataAddr, len: 8, write: true }]);
  assert.ok(driver.publish(), 'notifications on: driver kicks');
  queue.push(chain.headId, 1, 1);
  driver.setNoInterrupt(true);
  assert.is(queue.flush(), false, 'driver asked for no interrupts');
  assert.ok(queue.pop(chain));
  queue.push(chain.headId, 1, 1);
  driver.setNoInterrupt(false);
  assert.ok(queue.flush());
});

test('EVENT_IDX, device to driver: notify exactly when used->idx passes used_event (§2.7.7)', () => {
  const rig = splitRig({ size: 16, eventIdx: true, base: 0xfff0 });
  const { queue, driver, chain, layout } = rig;
  const complete = (n: number): boolean => {
    for (let k = 0; k < n; k++) driver.add([{ addr: layout.dataAddr, len: 8, write: true }]);
    driver.publish();
    for (let k = 0; k < n; k++) {
      assert.ok(queue.pop(chain));
      queue.push(chain.headId, 8, 1);
    }
    const notify = queue.flush();
    driver.pollUsed();
    return notify;
  };
  assert.ok(complete(1), 'first decision notifies');
  // used idx is now 0xfff1. Ask to be told when entry 0xfff5 is used: idx must pass 0xfff5.
  driver.setUsedEvent(0xfff5);
  assert.is(complete(4), false, '0xfff1 -> 0xfff5 does not pass 0xfff5');
  assert.ok(complete(1), '0xfff5 -> 0xfff6 passes it');
  assert.is(complete(3), false, 'event already passed');
  // Across the 2^16 wrap: event 0x0002, idx 0xfff9 -> 0x0003.
  driver.setUsedEvent(0x0002);
  assert.is(complete(5), false, '0xfff9 -> 0xfffe');
  assert.ok(complete(5), '0xfffe -> 0x0003 passes 0x0002');
  assert.not.ok(queue.broken);
});

test('EVENT_IDX, driver to device: avail_event and the re-check after enabling', () => {
  const rig = splitRig({ size: 16, eventIdx: true, base: 0xfffe });
  const { memory, queue, driver, chain, layout } = rig;
  const availEvent = (): number => memory.readU16(layout.deviceAddr + splitAvailEventOffset(16));
  assert.is(queue.enableNotifications(), false);
  assert.is(availEvent(), 0xfffe, 'notify me when entry 0xfffe is added');
  driver.add([{ addr: layout.dataAddr, len: 8, write: true }]);
  assert.ok(driver.publish(), 'driver crosses avail_event: kick');
  queue.disableNotifications(); // EVENT_IDX: avail_event simply stays behind
  driver.add([{ addr: layout.dataAddr, len: 8, write: true }]);
  assert.is(driver.publish(), false, 'no kick while the device is polling');
  let popped = 0;
  while (queue.pop(chain)) popped++;
  assert.is(popped, 2);
  // The driver adds a buffer between the device's last pop and enableNotifications().
  driver.add([{ addr: layout.dataAddr, len: 8, write: true }]);
  assert.is(driver.publish(), false, 'avail_event still old: no kick...');
  assert.ok(queue.enableNotifications(), '...so enable must report it');
  assert.is(availEvent(), 0x0000);
  assert.ok(queue.pop(chain));
  assert.is(queue.enableNotifications(), false);
  assert.is(availEvent(), 0x0001);
  driver.add([{ addr: layout.dataAddr, len: 8, write: true }]);
  assert.ok(driver.publish(), 'kick for entry 0x0001');
});

test('EVENT_IDX, a batch: enableNotifications(after) asks for the kick at the after-th buffer, also across 2^16, and reports only a whole batch', () => {
  const rig = splitRig({ size: 16, eventIdx: true, base: 0xfffc });
  const { memory, queue, driver, chain, layout } = rig;
  const availEvent = (): number => memory.readU16(layout.deviceAddr + splitAvailEventOffset(16));
  const offer = (n: number): boolean => {
    for (let k = 0; k < n; k++) driver.add([{ addr: layout.dataAddr, len: 8, write: true }]);
    return driver.publish();
  };
  assert.is(queue.enableNotifications(4), false);
  assert.is(availEvent(), 0xffff, 'entry 0xfffc + 4 - 1');
  assert.is(offer(2), false, '2 of 4: no kick');
  assert.is(queue.enableNotifications(4), false, 'the re-check does not count 2 as a batch');
  assert.ok(offer(2), 'the 4th buffer (entry 0xffff) kicks');
  assert.ok(queue.enableNotifications(4), 'a whole batch is there');
  let popped = 0;
  while (queue.pop(chain)) popped++;
  assert.is(popped, 4);
  assert.is(queue.enableNotifications(3), false);
  assert.is(availEvent(), 0x0002, 'across the wrap: 0x0000 + 3 - 1');
  assert.is(offer(1), false);
  assert.ok(offer(2), 'entry 0x0002 kicks');
  // More than the ring can hold is the whole ring; 1 (and the default) is the next entry.
  while (queue.pop(chain)) popped++;
  assert.is(queue.enableNotifications(1000), false);
  assert.is(availEvent(), (0x0003 + 16 - 1) & 0xffff);
  assert.is(queue.enableNotifications(1), false);
  assert.is(availEvent(), 0x0003);
  assert.not.ok(queue.broken);
});

test('a chain smaller than the queue grows on first use', () => {
  const rig = splitRig({ size: 8 });
  const { queue, driver, layout } = rig;
  assert.is(new DescriptorChain(0).capacity, 1, 'a broken queue reports size 0: still a usable chain');
  const small = new DescriptorChain(1);
  driver.add(buffers(layout.dataAddr, 8, 4));
  driver.publish();
  assert.ok(queue.pop(small));
  assert.is(small.count, 8);
  assert.ok(small.capacity >= 8);
});

test('stop() breaks the queue with the given reason (DeviceRejected by default)', () => {
  const rig = splitRig({ size: 8 });
  rig.queue.stop(QueueError.None);
  assert.is(rig.queue.error, QueueError.DeviceRejected);
  assert.ok(rig.queue.broken);
  assert.is(rig.counters.counts[QueueError.DeviceRejected], 1);
});

test('mark/rewind gives back every chain popped since the mark, in order', () => {
  const rig = splitRig({ size: 8 });
  const { queue, driver, chain, layout } = rig;
  const ids = [0, 1, 2, 3].map((k) => driver.add(buffers(layout.dataAddr + 64 * k, 1 + (k % 2), 0)));
  driver.publish();
  assert.ok(queue.pop(chain));
  const before = chain.headId; // popped before the mark, still in flight
  queue.mark();
  const popped: number[] = [];
  while (queue.pop(chain)) popped.push(chain.headId);
  assert.equal(popped, ids.slice(1));
  queue.push(before, 0, 1); // completing an earlier buffer is fine
  assert.is(queue.rewind(), 3);
  assert.is(queue.rewind(), 0, 'nothing popped since');
  const again: number[] = [];
  while (queue.pop(chain)) again.push(chain.headId);
  assert.equal(again, ids.slice(1));
  assert.is(queue.rewind(), 3, 'the mark stays where it was');
  assert.ok(queue.pop(chain));
  assert.ok(queue.undo());
  assert.is(queue.rewind(), 0, 'undo already gave the only one back');
  assert.not.ok(queue.broken);
  // Rewinding buffers that were already pushed is a device bug.
  queue.mark();
  assert.ok(queue.pop(chain));
  queue.push(chain.headId, 0, 1);
  assert.is(queue.rewind(), 0);
  assert.is(queue.error, QueueError.DeviceMisuse);
});

test.run();
