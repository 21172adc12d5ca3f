// ChainCursor walks one part of a chain as a byte stream: skip and take cross
// buffer boundaries, pass over empty buffers, stop at the end of the part,
// and the copy helpers move the bytes the pieces name.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CopyBatch } from '../src/memory/copy-batch';
import { GuestMemory } from '../src/memory/guest-memory';
import { ChainCursor, DescriptorChain, QueueError } from '../src/virtio/queue';

const ram = new Uint8Array(0x2000);
const mem = new GuestMemory([
  { gpa: 0, bytes: ram.subarray(0, 0x1000) },
  { gpa: 0x10000, bytes: ram.subarray(0x1000) },
]);

/** Readable [0x100,+3) [0x200,+0) [0x10010,+5), writable [0x300,+4) [0x10100,+0) [0x10200,+6). */
function chain(): DescriptorChain {
  const c = new DescriptorChain(8);
  for (const [addr, len, w] of [
    [0x100, 3, false],
    [0x200, 0, false],
    [0x10010, 5, false],
    [0x300, 4, true],
    [0x10100, 0, true],
    [0x10200, 6, true],
  ] as const) {
    assert.is(c.append(mem, addr, 0, len, w, 8), QueueError.None);
  }
  return c;
}

function pieces(cur: ChainCursor, max: number): [number, number, number][] {
  const out: [number, number, number][] = [];
  for (let n = cur.take(max); n > 0; n = cur.take(max)) out.push([cur.region, cur.offset, n]);
  return out;
}

test('take yields pieces within one buffer, skipping empty ones, and stops at the end of the part', () => {
  const c = chain();
  const cur = new ChainCursor();
  assert.equal(pieces(cur.readable(c, 0), 100), [
    [0, 0x100, 3],
    [1, 0x10, 5],
  ]);
  assert.equal(pieces(cur.writable(c, 0), 100), [
    [0, 0x300, 4],
    [1, 0x200, 6],
  ]);
  assert.equal(pieces(cur.readable(c, 0), 2), [
    [0, 0x100, 2],
    [0, 0x102, 1],
    [1, 0x10, 2],
    [1, 0x12, 2],
    [1, 0x14, 1],
  ]);
  assert.is(cur.readable(c, 0).take(0), 0);
});

test('skip crosses buffers, also from reset and mid-buffer, and ends the part when it passes its end', () => {
  const c = chain();
  const cur = new ChainCursor();
  assert.equal(pieces(cur.readable(c, 0).skip(3), 100), [[1, 0x10, 5]]);
  assert.equal(pieces(cur.readable(c, 4), 100), [[1, 0x11, 4]]);
  assert.equal(pieces(cur.readable(c, 1).skip(3), 100), [[1, 0x11, 4]], 'a reset skip and a skip add up');
  cur.readable(c, 0);
  assert.is(cur.take(1), 1);
  assert.equal(pieces(cur.skip(1), 100), [
    [0, 0x102, 1],
    [1, 0x10, 5],
  ], 'a skip inside the current buffer');
  cur.readable(c, 0);
  assert.is(cur.take(1), 1);
  assert.equal(pieces(cur.skip(4), 100), [[1, 0x12, 3]], 'a skip past the current buffer');
  assert.is(cur.readable(c, 0).skip(8).take(100), 0, 'only the readable part is walked');
  assert.is(cur.readable(c, 20).take(100), 0);
  assert.equal(pieces(cur.writable(c, 0).skip(5), 100), [[1, 0x201, 5]]);
});

test('read, write and the batched copies move the bytes the pieces name', () => {
  const c = chain();
  const cur = new ChainCursor();
  ram.fill(0);
  ram.set([1, 2, 3], 0x100);
  ram.set([4, 5, 6, 7, 8], 0x1010);
  const out = new Uint8Array(10);
  assert.is(cur.readable(c, 1).read(mem, out, 1, 100), 7);
  assert.equal([...out], [0, 2, 3, 4, 5, 6, 7, 8, 0, 0]);
  assert.is(cur.writable(c, 0).write(mem, Uint8Array.of(9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9), 0, 11), 10);
  assert.equal([...ram.subarray(0x300, 0x305)], [9, 9, 9, 9, 0]);
  assert.equal([...ram.subarray(0x1200, 0x1207)], [9, 9, 9, 9, 9, 9, 0]);

  const host = new Uint8Array(16);
  const batch = new CopyBatch();
  const regionAddress = Float64Array.from([0, 1], (r) => CopyBatch.addressOf(mem.regionBytes(r)));
  const copies = { batch, regionAddress, hostBase: CopyBatch.addressOf(host) };
  try {
    assert.is(cur.readable(c, 2).gatherBatched(copies, 4, 4), 4);
    batch.flush();
    assert.equal([...host.subarray(4, 8)], [3, 4, 5, 6]);
    host.set([11, 12, 13, 14, 15, 16, 17, 18]);
    assert.is(cur.writable(c, 3).scatterBatched(copies, 0, 100), 7, 'the writable part has 7 bytes left');
    batch.flush();
    assert.is(ram[0x303], 11);
    assert.equal([...ram.subarray(0x1200, 0x1206)], [12, 13, 14, 15, 16, 17]);
  } finally {
    CopyBatch.release(mem.regionBytes(0));
    CopyBatch.release(mem.regionBytes(1));
    CopyBatch.release(host);
  }
});

test.run();
