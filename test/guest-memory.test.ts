import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { GuestMemory, GuestMemoryError } from '../src/memory/guest-memory';

const CANARY = 0xa5;
const PAD = 64;

/** Two regions inside one larger buffer, surrounded by canary bytes: [pad][A 4 KiB][pad][B 4 KiB][pad]. */
function twoRegions(): { memory: GuestMemory; backing: Uint8Array; canariesIntact: () => boolean } {
  const backing = new Uint8Array(PAD + 4096 + PAD + 4096 + PAD).fill(CANARY);
  const a = backing.subarray(PAD, PAD + 4096);
  const b = backing.subarray(PAD + 4096 + PAD, PAD + 4096 + PAD + 4096);
  a.fill(0);
  b.fill(0);
  const memory = new GuestMemory([
    { gpa: 0x1000, bytes: a },
    { gpa: 0x10000, bytes: b },
  ]);
  const canariesIntact = (): boolean => {
    const spans = [
      [0, PAD],
      [PAD + 4096, PAD + 4096 + PAD],
      [PAD + 4096 + PAD + 4096, backing.length],
    ];
    return spans.every(([s, e]) => backing.subarray(s, e).every((x) => x === CANARY));
  };
  return { memory, backing, canariesIntact };
}

test('find: hits in each region and counts nothing', () => {
  const { memory } = twoRegions();
  assert.is(memory.find(0x1000, 4096), 0);
  assert.is(memory.find(0x1ffc, 4), 0);
  assert.is(memory.find(0x10000, 1), 1);
  assert.is(memory.find(0x10fff, 1), 1);
  assert.is(memory.find(0x1000, 1), 0);
  assert.is(memory.regionOffset(1, 0x10010), 0x10);
  assert.is(memory.regionBase(1), 0x10000);
  assert.is(memory.outOfRange, 0);
});

test('find: zero-length ranges are accepted from a region start to its end inclusive', () => {
  const { memory } = twoRegions();
  assert.is(memory.find(0x1000, 0), 0);
  assert.is(memory.find(0x2000, 0), 0);
  assert.is(memory.find(0x2001, 0), -1);
  assert.is(memory.outOfRange, 1);
});

test('find: every out-of-range form is rejected and counted', () => {
  const { memory } = twoRegions();
  const bad: Array<[number, number]> = [
    [0, 1], // below the first region
    [0xfff, 2], // starts before region A
    [0x1fff, 2], // ends past region A
    [0x2000, 1], // just past region A (hole)
    [0x8000, 16], // in the hole
    [0x1f00, 0x10000], // straddles A, the hole and B
    [0x10fff, 2], // ends past region B
    [0x11000, 1], // past everything
    [-1, 1], // negative address
    [0x1000, -1], // negative length
    [4096.5, 1], // fractional address
    [0x1000, 1.5], // fractional length
    [Number.NaN, 1],
    [0x1000, Number.NaN],
    [Number.POSITIVE_INFINITY, 1],
    [0x1000, Number.POSITIVE_INFINITY],
    [2 ** 53, 1], // not exact as a number
    [2 ** 64 - 2 ** 12, 1], // near 2^64
    [Number.MAX_SAFE_INTEGER, 2], // gpa + len overflows 2^53
    [0x1000, Number.MAX_SAFE_INTEGER], // huge length
    [0x1000, 0xffffffff], // u32-max descriptor length
  ];
  for (const [gpa, len] of bad) assert.is(memory.find(gpa, len), -1, `find(${gpa}, ${len})`);
  assert.is(memory.outOfRange, bad.length);
});

test('find: a range straddling two GPA-adjacent regions is rejected', () => {
  const buf = new ArrayBuffer(8192);
  const memory = new GuestMemory([
    { gpa: 0, bytes: new Uint8Array(buf, 0, 4096) },
    { gpa: 4096, bytes: new Uint8Array(buf, 4096, 4096) },
  ]);
  assert.is(memory.find(4092, 4), 0);
  assert.is(memory.find(4096, 4), 1);
  assert.is(memory.find(4094, 4), -1);
  assert.is(memory.outOfRange, 1);
});

test('little-endian reads and writes of every width', () => {
  const { memory } = twoRegions();
  memory.writeU8(0x1000, 0xab);
  memory.writeU16(0x1002, 0x1234);
  memory.writeU32(0x1004, 0xdeadbeef);
  memory.writeU64(0x1008, 2 ** 53 - 1);
  memory.writeU64(0x10000, 0x1_2345_6789);
  assert.is(memory.readU8(0x1000), 0xab);
  assert.is(memory.readU16(0x1002), 0x1234);
  assert.is(memory.readU8(0x1002), 0x34);
  assert.is(memory.readU32(0x1004), 0xdeadbeef);
  assert.is(memory.readU8(0x1004), 0xef);
  assert.is(memory.readU64(0x1008), 2 ** 53 - 1);
  assert.is(memory.readU64(0x10000), 0x1_2345_6789);
  assert.is(memory.readU32(0x10004), 1);
  assert.is(memory.outOfRange, 0);
});

test('u64 reads of 2^53 and more throw; writes of values outside the type throw RangeError', () => {
  const { memory } = twoRegions();
  memory.writeU32(0x1000, 0);
  memory.writeU32(0x1004, 0x20_0000); // 2^53
  assert.throws(() => memory.readU64(0x1000), (e: unknown) => e instanceof GuestMemoryError);
  memory.writeU32(0x1004, 0xffffffff);
  assert.throws(() => memory.readU64(0x1000), (e: unknown) => e instanceof GuestMemoryError);
  assert.throws(() => memory.writeU64(0x1000, 2 ** 53), (e: unknown) => e instanceof RangeError);
  assert.throws(() => memory.writeU64(0x1000, -1), (e: unknown) => e instanceof RangeError);
  assert.throws(() => memory.writeU8(0x1000, 256), (e: unknown) => e instanceof RangeError);
  assert.throws(() => memory.writeU16(0x1000, 0x10000), (e: unknown) => e instanceof RangeError);
  assert.throws(() => memory.writeU32(0x1000, 1.5), (e: unknown) => e instanceof RangeError);
  assert.is(memory.outOfRange, 0);
});

test('convenience accessors throw GuestMemoryError and count every bad access, touching nothing outside', () => {
  const { memory, canariesIntact } = twoRegions();
  const src = new Uint8Array(64).fill(0xee);
  const dst = new Uint8Array(64);
  const attempts: Array<() => unknown> = [
    () => memory.readU8(0x2000),
    () => memory.readU16(0x1fff),
    () => memory.readU32(0x1ffe),
    () => memory.readU64(0x1ffc),
    () => memory.writeU8(0xfff, 1),
    () => memory.writeU16(0x1fff, 1),
    () => memory.writeU32(0x10ffd, 1),
    () => memory.writeU64(0x10ff9, 1),
    () => memory.read(0x1fe0, dst, 0, 64),
    () => memory.write(0x1fe0, src, 0, 64),
    () => memory.write(0xfe0, src, 0, 64),
    () => memory.write(0x10fc1, src, 0, 64),
    () => memory.write(-64, src, 0, 64),
    () => memory.view(0x1fff, 2),
  ];
  for (const attempt of attempts) assert.throws(attempt, (e: unknown) => e instanceof GuestMemoryError);
  assert.is(memory.outOfRange, attempts.length);
  assert.ok(canariesIntact());
});

test('read/write copy whole ranges inside a region; bad host spans are RangeError, not counted', () => {
  const { memory, canariesIntact } = twoRegions();
  const src = Uint8Array.from({ length: 32 }, (_, i) => i + 1);
  memory.write(0x1fe0, src, 0, 32); // last 32 bytes of region A
  const dst = new Uint8Array(40);
  memory.read(0x1fe0, dst, 8, 32);
  assert.equal(Array.from(dst.subarray(8)), Array.from(src));
  assert.equal(Array.from(memory.view(0x1fe0, 4)), [1, 2, 3, 4]);
  assert.throws(() => memory.read(0x1000, dst, 30, 16), (e: unknown) => e instanceof RangeError);
  assert.throws(() => memory.write(0x1000, src, -1, 4), (e: unknown) => e instanceof RangeError);
  assert.is(memory.outOfRange, 0);
  assert.ok(canariesIntact());
});

test('hot-path views address the right bytes', () => {
  const { memory } = twoRegions();
  memory.writeU16(0x10006, 0xbeef);
  memory.writeU32(0x10008, 0xcafef00d);
  const r = memory.find(0x10006, 2);
  assert.is(r, 1);
  assert.is(memory.regionU16(r)[memory.regionOffset(r, 0x10006) / 2], 0xbeef);
  assert.is(memory.regionU32(r)[memory.regionOffset(r, 0x10008) / 4], 0xcafef00d);
  assert.is(memory.regionView(r).getUint16(6, true), 0xbeef);
  assert.is(memory.regionBytes(r)[6], 0xef);
});

test('fromArrayBuffer maps a slice at a guest address', () => {
  const buf = new ArrayBuffer(1024);
  const memory = GuestMemory.fromArrayBuffer(buf, 0x4000, 256, 512);
  assert.is(memory.regionCount, 1);
  assert.is(memory.find(0x4000, 512), 0);
  assert.is(memory.find(0x4000, 513), -1);
  memory.writeU8(0x4000, 7);
  assert.is(new Uint8Array(buf)[256], 7);
  const shared = GuestMemory.fromArrayBuffer(new SharedArrayBuffer(64));
  shared.writeU32(60, 1);
  assert.is(shared.readU32(60), 1);
});

test('constructor rejects overlapping, misaligned and oversized regions', () => {
  const buf = new ArrayBuffer(8192);
  const bad: Array<() => GuestMemory> = [
    () => new GuestMemory([{ gpa: 0, bytes: new Uint8Array(buf, 0, 4096) }, { gpa: 4000, bytes: new Uint8Array(buf, 4096, 4096) }]),
    () => new GuestMemory([{ gpa: 4, bytes: new Uint8Array(buf, 0, 16) }]),
    () => new GuestMemory([{ gpa: 0, bytes: new Uint8Array(buf, 4, 16) }]),
    () => new GuestMemory([{ gpa: -8, bytes: new Uint8Array(buf, 0, 16) }]),
    () => new GuestMemory([{ gpa: 2 ** 53 - 8, bytes: new Uint8Array(buf, 0, 16) }]),
  ];
  for (const make of bad) assert.throws(make, (e: unknown) => e instanceof GuestMemoryError);
  const empty = new GuestMemory([]);
  assert.is(empty.find(0, 0), -1);
  assert.is(empty.outOfRange, 1);
});

test.run();
