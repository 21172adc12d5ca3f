// Every ring rule, broken one at a time: the queue must stop itself with the
// right reason, count it once, offer nothing afterwards, never throw, and
// never touch memory outside the guest region.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DescFlags, PackedDesc, SplitAvail, SplitDesc } from 'virtio-spec-types';
import { type GuestAccess, writeAddress } from '../src/fuzz/guest-access';
import { PackedRingDriver } from '../src/fuzz/packed-ring-driver';
import { DescriptorChain } from '../src/virtio/queue/descriptor-chain';
import { PackedQueue } from '../src/virtio/queue/packed-queue';
import { QueueError, QueueErrorCounters, queueErrorName } from '../src/virtio/queue/queue-error';
import { SplitQueue } from '../src/virtio/queue/split-queue';
import type { QueueLayout, Virtqueue } from '../src/virtio/queue/virtqueue';
import { BASE_GPA, REGION_SIZE, type PackedRig, type SplitRig, makeGuest, packedRig, splitRig } from './support/virtqueue-rig';

const { NEXT, WRITE, INDIRECT } = DescFlags;
const END = BASE_GPA + REGION_SIZE;

interface Stoppable {
  queue: Virtqueue;
  chain: DescriptorChain;
  counters: QueueErrorCounters;
  memory: { readonly outOfRange: number };
  canariesIntact(): boolean;
}

/** Runs `provoke` (which must not throw) and checks the queue stopped with `code` and stays stopped. */
function expectStop(rig: Stoppable, code: QueueError, provoke: () => void, expectOutOfRange = false): void {
  const name = queueErrorName(code);
  const before = rig.memory.outOfRange;
  provoke();
  assert.is(queueErrorName(rig.queue.error), name);
  assert.ok(rig.queue.broken, name);
  assert.is(rig.counters.counts[code], 1, `${name} counted once`);
  assert.is(rig.counters.total, 1, `${name}: nothing else counted`);
  if (expectOutOfRange) assert.ok(rig.memory.outOfRange > before, `${name}: counted as out of range`);
  else assert.is(rig.memory.outOfRange, before, `${name}: no out-of-range access`);
  // Stopped for good, and every entry point stays quiet.
  assert.is(rig.queue.pop(rig.chain), false);
  assert.is(rig.queue.hasAvailable(), false);
  assert.is(rig.queue.undo(), false);
  rig.queue.push(0, 0, 1);
  assert.is(rig.queue.flush(), false);
  assert.is(rig.queue.enableNotifications(), false);
  rig.queue.disableNotifications();
  assert.is(rig.queue.error, code);
  assert.is(rig.counters.total, 1);
  assert.ok(rig.canariesIntact(), `${name}: canaries intact`);
}

function writeTableEntry(guest: GuestAccess, table: number, j: number, addr: number, len: number, flags: number, next: number): void {
  const o = table + j * SplitDesc.SIZE;
  writeAddress(guest, o + SplitDesc.ADDR, addr);
  guest.writeU32(o + SplitDesc.LEN, len >>> 0);
  guest.writeU16(o + SplitDesc.FLAGS, flags);
  guest.writeU16(o + SplitDesc.NEXT, next);
}

// ---------------------------------------------------------------- split

function splitCase(name: string, code: QueueError, build: (r: SplitRig) => void, o: { size?: number; indirect?: boolean; oor?: boolean } = {}): void {
  test(`split: ${name} -> ${queueErrorName(code)}`, () => {
    const rig = splitRig({ size: o.size ?? 8, indirect: o.indirect ?? true });
    build(rig);
    expectStop(rig, code, () => {
      rig.queue.pop(rig.chain);
    }, o.oor ?? false);
  });
}

/** Offers descriptor 0 as head. */
function offer0(r: SplitRig): void {
  r.driver.offerHead(0);
  r.driver.publish();
}

splitCase('head index = Queue Size', QueueError.HeadOutOfRange, (r) => {
  r.driver.offerHead(8);
  r.driver.publish();
});
splitCase('next = Queue Size', QueueError.NextOutOfRange, (r) => {
  r.driver.writeDescriptor(0, r.layout.dataAddr, 8, NEXT, 8);
  offer0(r);
});
splitCase('next beyond an indirect table', QueueError.NextOutOfRange, (r) => {
  writeTableEntry(r.memory, r.layout.tableAddr, 0, r.layout.dataAddr, 8, NEXT, 2);
  r.driver.writeDescriptor(0, r.layout.tableAddr, 32, INDIRECT, 0);
  offer0(r);
});
splitCase('two-descriptor loop', QueueError.DescriptorLoop, (r) => {
  r.driver.writeDescriptor(0, r.layout.dataAddr, 8, NEXT, 1);
  r.driver.writeDescriptor(1, r.layout.dataAddr, 8, NEXT, 0);
  offer0(r);
});
splitCase('descriptor pointing at itself', QueueError.DescriptorLoop, (r) => {
  r.driver.writeDescriptor(0, r.layout.dataAddr, 8, NEXT, 0);
  offer0(r);
});
splitCase('loop inside an indirect table', QueueError.DescriptorLoop, (r) => {
  writeTableEntry(r.memory, r.layout.tableAddr, 0, r.layout.dataAddr, 8, NEXT, 1);
  writeTableEntry(r.memory, r.layout.tableAddr, 1, r.layout.dataAddr, 8, NEXT, 0);
  r.driver.writeDescriptor(0, r.layout.tableAddr, 32, INDIRECT, 0);
  offer0(r);
});
splitCase('direct + indirect descriptors longer than Queue Size', QueueError.ChainTooLong, (r) => {
  for (let j = 0; j < 4; j++) writeTableEntry(r.memory, r.layout.tableAddr, j, r.layout.dataAddr, 8, j < 3 ? NEXT : 0, j + 1);
  r.driver.writeDescriptor(0, r.layout.dataAddr, 8, NEXT, 1);
  r.driver.writeDescriptor(1, r.layout.tableAddr, 64, INDIRECT, 0);
  offer0(r);
}, { size: 4 });
splitCase('readable after writable', QueueError.ReadableAfterWritable, (r) => {
  r.driver.writeDescriptor(0, r.layout.dataAddr, 8, WRITE | NEXT, 1);
  r.driver.writeDescriptor(1, r.layout.dataAddr, 8, 0, 0);
  offer0(r);
});
splitCase('readable in an indirect table after a writable direct descriptor', QueueError.ReadableAfterWritable, (r) => {
  writeTableEntry(r.memory, r.layout.tableAddr, 0, r.layout.dataAddr, 8, 0, 0);
  r.driver.writeDescriptor(0, r.layout.dataAddr, 8, WRITE | NEXT, 1);
  r.driver.writeDescriptor(1, r.layout.tableAddr, 16, INDIRECT, 0);
  offer0(r);
});
splitCase('total length above 2^32 - 1', QueueError.LengthOverflow, (r) => {
  r.driver.writeDescriptor(0, r.layout.dataAddr, 0x1000, NEXT, 1);
  r.driver.writeDescriptor(1, r.layout.dataAddr, 0xffff_ffff, WRITE, 0);
  offer0(r);
});
for (const [what, addr, len] of [
  ['buffer past the end of memory', END, 8],
  ['buffer straddling the end of memory', END - 4, 8],
  ['buffer below memory', 0, 8],
  ['u32-max length', BASE_GPA, 0xffff_ffff],
  ['address near 2^53', 2 ** 53 - 8, 16],
  ['address near 2^64', 2 ** 64 - 2 ** 12, 8],
] as const) {
  splitCase(what, QueueError.AddressOutOfRange, (r) => {
    r.driver.writeDescriptor(0, addr, len, 0, 0);
    offer0(r);
  }, { oor: true });
}
splitCase('indirect table outside memory', QueueError.AddressOutOfRange, (r) => {
  r.driver.writeDescriptor(0, END - 16, 32, INDIRECT, 0);
  offer0(r);
}, { oor: true });
splitCase('buffer in an indirect table outside memory', QueueError.AddressOutOfRange, (r) => {
  writeTableEntry(r.memory, r.layout.tableAddr, 0, 2 ** 64 - 2 ** 11, 8, 0, 0);
  r.driver.writeDescriptor(0, r.layout.tableAddr, 16, INDIRECT, 0);
  offer0(r);
}, { oor: true });
splitCase('INDIRECT without VIRTIO_F_INDIRECT_DESC', QueueError.IndirectNotNegotiated, (r) => {
  writeTableEntry(r.memory, r.layout.tableAddr, 0, r.layout.dataAddr, 8, 0, 0);
  r.driver.writeDescriptor(0, r.layout.tableAddr, 16, INDIRECT, 0);
  offer0(r);
}, { indirect: false });
splitCase('INDIRECT with NEXT', QueueError.IndirectWithNext, (r) => {
  writeTableEntry(r.memory, r.layout.tableAddr, 0, r.layout.dataAddr, 8, 0, 0);
  r.driver.writeDescriptor(0, r.layout.tableAddr, 16, INDIRECT | NEXT, 1);
  r.driver.writeDescriptor(1, r.layout.dataAddr, 8, 0, 0);
  offer0(r);
});
splitCase('INDIRECT inside an indirect table', QueueError.NestedIndirect, (r) => {
  writeTableEntry(r.memory, r.layout.tableAddr, 0, r.layout.tableAddr + 0x100, 16, INDIRECT, 0);
  r.driver.writeDescriptor(0, r.layout.tableAddr, 16, INDIRECT, 0);
  offer0(r);
});
splitCase('indirect table length not a multiple of 16', QueueError.IndirectLength, (r) => {
  r.driver.writeDescriptor(0, r.layout.tableAddr, 24, INDIRECT, 0);
  offer0(r);
});
splitCase('indirect table length 0', QueueError.IndirectLength, (r) => {
  r.driver.writeDescriptor(0, r.layout.tableAddr, 0, INDIRECT, 0);
  offer0(r);
});
splitCase('indirect table longer than Queue Size', QueueError.IndirectTooLong, (r) => {
  r.driver.writeDescriptor(0, r.layout.tableAddr, 16 * 9, INDIRECT, 0);
  offer0(r);
});
splitCase('avail->idx more than Queue Size ahead', QueueError.AvailIdxJump, (r) => {
  r.memory.writeU16(r.layout.driverAddr + SplitAvail.IDX, 9);
});
splitCase('avail->idx moved backwards (stale / garbage)', QueueError.AvailIdxJump, (r) => {
  r.driver.add([{ addr: r.layout.dataAddr, len: 8, write: true }]);
  r.driver.add([{ addr: r.layout.dataAddr, len: 8, write: true }]);
  r.driver.publish();
  assert.ok(r.queue.pop(r.chain));
  assert.ok(r.queue.pop(r.chain));
  r.memory.writeU16(r.layout.driverAddr + SplitAvail.IDX, 1);
});
splitCase('more heads offered than descriptors exist', QueueError.RingOverrun, (r) => {
  for (let k = 0; k < 4; k++) r.driver.add([{ addr: r.layout.dataAddr, len: 8, write: true }]);
  r.driver.publish();
  for (let k = 0; k < 4; k++) assert.ok(r.queue.pop(r.chain));
  r.driver.offerHead(0); // re-offers a head the device still holds
  r.driver.publish();
}, { size: 4 });

test('split: avail->idx exactly Queue Size ahead is fine', () => {
  const rig = splitRig({ size: 8 });
  for (let k = 0; k < 8; k++) rig.driver.add([{ addr: rig.layout.dataAddr, len: 8, write: true }]);
  rig.driver.publish();
  let n = 0;
  while (rig.queue.pop(rig.chain)) n++;
  assert.is(n, 8);
  assert.not.ok(rig.queue.broken);
});

// --------------------------------------------------------------- packed

const AVAIL1 = PackedRingDriver.availBits(1);

function packedCase(name: string, code: QueueError, build: (r: PackedRig) => void, o: { size?: number; indirect?: boolean; oor?: boolean } = {}): void {
  test(`packed: ${name} -> ${queueErrorName(code)}`, () => {
    const rig = packedRig({ size: o.size ?? 8, indirect: o.indirect ?? true });
    build(rig);
    expectStop(rig, code, () => {
      rig.queue.pop(rig.chain);
    }, o.oor ?? false);
  });
}

function writePackedTableEntry(guest: GuestAccess, table: number, j: number, addr: number, len: number, flags: number): void {
  const o = table + j * PackedDesc.SIZE;
  writeAddress(guest, o + PackedDesc.ADDR, addr);
  guest.writeU32(o + PackedDesc.LEN, len >>> 0);
  guest.writeU16(o + PackedDesc.ID, 0);
  guest.writeU16(o + PackedDesc.FLAGS, flags);
}

/** Writes slots 1..n-1 then slot 0 (head last), all marked available for wrap counter 1. */
function packedList(r: PackedRig, descs: ReadonlyArray<[addr: number, len: number, flags: number]>): void {
  for (let k = descs.length - 1; k >= 0; k--) {
    const [addr, len, flags] = descs[k];
    r.driver.writeDescriptor(k, addr, len, 0, flags | AVAIL1);
  }
}

packedCase('NEXT on every slot of the ring', QueueError.ChainTooLong, (r) => {
  packedList(r, [0, 1, 2, 3].map(() => [r.layout.dataAddr, 8, NEXT] as [number, number, number]));
}, { size: 4 });
packedCase('INDIRECT inside a NEXT-linked list', QueueError.IndirectInChain, (r) => {
  writePackedTableEntry(r.memory, r.layout.tableAddr, 0, r.layout.dataAddr, 8, 0);
  packedList(r, [[r.layout.dataAddr, 8, NEXT], [r.layout.tableAddr, 16, INDIRECT]]);
});
packedCase('INDIRECT with NEXT', QueueError.IndirectWithNext, (r) => {
  writePackedTableEntry(r.memory, r.layout.tableAddr, 0, r.layout.dataAddr, 8, 0);
  packedList(r, [[r.layout.tableAddr, 16, INDIRECT | NEXT], [r.layout.dataAddr, 8, 0]]);
});
packedCase('INDIRECT without VIRTIO_F_INDIRECT_DESC', QueueError.IndirectNotNegotiated, (r) => {
  writePackedTableEntry(r.memory, r.layout.tableAddr, 0, r.layout.dataAddr, 8, 0);
  packedList(r, [[r.layout.tableAddr, 16, INDIRECT]]);
}, { indirect: false });
packedCase('INDIRECT inside an indirect table', QueueError.NestedIndirect, (r) => {
  writePackedTableEntry(r.memory, r.layout.tableAddr, 0, r.layout.dataAddr, 8, 0);
  writePackedTableEntry(r.memory, r.layout.tableAddr, 1, r.layout.tableAddr, 16, INDIRECT);
  packedList(r, [[r.layout.tableAddr, 32, INDIRECT]]);
});
packedCase('indirect table length not a multiple of 16', QueueError.IndirectLength, (r) => {
  packedList(r, [[r.layout.tableAddr, 40, INDIRECT]]);
});
packedCase('indirect table longer than Queue Size', QueueError.IndirectTooLong, (r) => {
  packedList(r, [[r.layout.tableAddr, 16 * 9, INDIRECT]]);
});
packedCase('readable after writable', QueueError.ReadableAfterWritable, (r) => {
  packedList(r, [[r.layout.dataAddr, 8, WRITE | NEXT], [r.layout.dataAddr, 8, 0]]);
});
packedCase('readable after writable inside an indirect table', QueueError.ReadableAfterWritable, (r) => {
  writePackedTableEntry(r.memory, r.layout.tableAddr, 0, r.layout.dataAddr, 8, WRITE);
  writePackedTableEntry(r.memory, r.layout.tableAddr, 1, r.layout.dataAddr, 8, 0);
  packedList(r, [[r.layout.tableAddr, 32, INDIRECT]]);
});
packedCase('total length above 2^32 - 1', QueueError.LengthOverflow, (r) => {
  packedList(r, [[r.layout.dataAddr, 2, NEXT], [r.layout.dataAddr, 0xffff_ffff, WRITE]]);
});
for (const [what, addr, len] of [
  ['buffer straddling the end of memory', END - 4, 8],
  ['address near 2^53', 2 ** 53 - 8, 16],
  ['address near 2^64', 2 ** 64 - 2 ** 12, 8],
] as const) {
  packedCase(what, QueueError.AddressOutOfRange, (r) => packedList(r, [[addr, len, 0]]), { oor: true });
}
packedCase('indirect table outside memory', QueueError.AddressOutOfRange, (r) => {
  packedList(r, [[END, 16, INDIRECT]]);
}, { oor: true });
packedCase('driver re-offers a slot the device still holds', QueueError.RingOverrun, (r) => {
  r.driver.add([{ addr: r.layout.dataAddr, len: 8, write: true }]);
  r.driver.add([{ addr: r.layout.dataAddr, len: 8, write: true }]);
  assert.ok(r.queue.pop(r.chain));
  assert.ok(r.queue.pop(r.chain));
  // Slot 0 marked available for the next lap (wrap 0) before the device used it.
  r.driver.writeDescriptor(0, r.layout.dataAddr, 8, 0, PackedRingDriver.availBits(0));
}, { size: 2 });

// ----------------------------------------------------- set-up and misuse

function rejectsLayout(kind: 'split' | 'packed', name: string, code: QueueError, layout: Partial<QueueLayout>, bases: { availBase?: number; usedBase?: number } = {}, oor = false): void {
  test(`${kind}: ${name} -> ${queueErrorName(code)}`, () => {
    const guest = makeGuest();
    const counters = new QueueErrorCounters();
    const full: QueueLayout = { size: 8, descAddr: BASE_GPA, driverAddr: BASE_GPA + 0x1000, deviceAddr: BASE_GPA + 0x2000, ...layout };
    const options = { features: { eventIdx: true, indirect: true }, counters, ...bases };
    const queue = kind === 'split' ? new SplitQueue(guest.memory, full, options) : new PackedQueue(guest.memory, full, options);
    assert.is(guest.memory.outOfRange, oor ? 1 : 0, 'set-up lookups counted');
    expectStop({ queue, chain: new DescriptorChain(4), counters, memory: guest.memory, canariesIntact: guest.canariesIntact }, code, () => {});
  });
}

for (const kind of ['split', 'packed'] as const) {
  for (const size of [0, 32769, 65536, 2.5, Number.NaN, -8]) rejectsLayout(kind, `size ${size}`, QueueError.InvalidQueueSize, { size });
  rejectsLayout(kind, 'descriptor area misaligned', QueueError.RingMisaligned, { descAddr: BASE_GPA + 8 });
  rejectsLayout(kind, 'device area misaligned', QueueError.RingMisaligned, { deviceAddr: BASE_GPA + 0x2002 });
  rejectsLayout(kind, 'descriptor area past the end', QueueError.RingOutOfRange, { descAddr: END - 64 }, {}, true);
  rejectsLayout(kind, 'driver area below memory', QueueError.RingOutOfRange, { driverAddr: 0 }, {}, true);
  rejectsLayout(kind, 'device area near 2^64', QueueError.RingOutOfRange, { deviceAddr: 2 ** 64 - 4096 }, {}, true);
  rejectsLayout(kind, 'descriptor area NaN', QueueError.RingOutOfRange, { descAddr: Number.NaN }, {}, true);
  rejectsLayout(kind, 'resume point outside the ring', QueueError.InvalidRingBase, {}, { availBase: 0x1_0000 });
  rejectsLayout(kind, 'fractional resume point', QueueError.InvalidRingBase, {}, { usedBase: 0.5 });
}
rejectsLayout('split', 'size not a power of 2', QueueError.InvalidQueueSize, { size: 12 });
rejectsLayout('split', 'avail ring misaligned', QueueError.RingMisaligned, { driverAddr: BASE_GPA + 0x1001 });
rejectsLayout('packed', 'driver event area misaligned', QueueError.RingMisaligned, { driverAddr: BASE_GPA + 0x1002 });
rejectsLayout('packed', 'resume offset not below Queue Size', QueueError.InvalidRingBase, {}, { availBase: 8 | (1 << 15) });

test('packed: a queue size that is not a power of 2 is fine', () => {
  const guest = makeGuest();
  const q = new PackedQueue(guest.memory, { size: 12, descAddr: BASE_GPA, driverAddr: BASE_GPA + 0x1000, deviceAddr: BASE_GPA + 0x1004 }, { features: { eventIdx: false, indirect: false } });
  assert.not.ok(q.broken);
});

function misuseCase(kind: 'split' | 'packed', name: string, misuse: (q: Virtqueue, chain: DescriptorChain) => void): void {
  test(`${kind}: device ${name} -> DeviceMisuse`, () => {
    const rig = kind === 'split' ? splitRig({ size: 8 }) : packedRig({ size: 8 });
    rig.driver.add([{ addr: rig.layout.dataAddr, len: 8, write: true }]);
    if (kind === 'split') (rig as SplitRig).driver.publish();
    expectStop(rig, QueueError.DeviceMisuse, () => misuse(rig.queue, rig.chain));
  });
}
for (const kind of ['split', 'packed'] as const) {
  misuseCase(kind, 'pushes without a pop', (q) => q.push(0, 0, 1));
  misuseCase(kind, 'pushes a negative length', (q, c) => {
    assert.ok(q.pop(c));
    q.push(c.headId, -1, c.ringSlots);
  });
  misuseCase(kind, 'pushes more than it popped', (q, c) => {
    assert.ok(q.pop(c));
    q.push(c.headId, 0, 1);
    q.push(c.headId, 0, 1);
  });
}
misuseCase('split', 'pushes a head id >= Queue Size', (q, c) => {
  assert.ok(q.pop(c));
  q.push(8, 0, 1);
});
misuseCase('packed', 'pushes more slots than in flight', (q, c) => {
  assert.ok(q.pop(c));
  q.push(c.headId, 0, 2);
});
misuseCase('packed', 'pushes a Buffer ID above 0xffff', (q, c) => {
  assert.ok(q.pop(c));
  q.push(0x1_0000, 0, 1);
});

test('one shared counter aggregates the first violation of each queue', () => {
  const counters = new QueueErrorCounters();
  const guest = makeGuest();
  const bad = { size: 3, descAddr: BASE_GPA, driverAddr: BASE_GPA + 0x1000, deviceAddr: BASE_GPA + 0x2000 };
  new SplitQueue(guest.memory, bad, { features: { eventIdx: false, indirect: false }, counters });
  new SplitQueue(guest.memory, { ...bad, size: 0 }, { features: { eventIdx: false, indirect: false }, counters });
  new PackedQueue(guest.memory, { ...bad, descAddr: BASE_GPA + 4 }, { features: { eventIdx: false, indirect: false }, counters });
  assert.is(counters.total, 3);
  assert.equal(counters.toJSON(), { InvalidQueueSize: 2, RingMisaligned: 1 });
});

test.run();
