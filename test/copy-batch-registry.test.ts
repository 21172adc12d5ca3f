// Batched copies only touch registered memory, registrations are counted,
// and creating and disposing queue pairs does not exhaust the registry.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LoopbackQueue } from '../src/backend/loopback/loopback-queue';
import { CopyBatch } from '../src/memory/copy-batch';
import { GuestMemory } from '../src/memory/guest-memory';
import { NetQueuePair } from '../src/virtio/net/queue-pair';

test('copies between registered buffers land in order; a batch with anything unregistered is refused whole, nothing of it copied', () => {
  const a = new Uint8Array(4096);
  const b = new Uint8Array(4096);
  const batch = new CopyBatch();
  const pa = CopyBatch.addressOf(a);
  const pb = CopyBatch.addressOf(b);
  a.set([1, 2, 3, 4], 100);
  batch.add(pb + 10, pa + 100, 4);
  batch.flush();
  assert.equal([...b.subarray(10, 14)], [1, 2, 3, 4]);
  // One byte past the end of b: refused.
  batch.add(pb + 4093, pa, 4);
  assert.throws(() => batch.flush(), /outside registered memory/);
  // A good copy queued before a bad one is not done either: the batch is checked whole first.
  b.fill(0, 20, 24);
  batch.add(pb + 20, pa + 100, 4);
  batch.add(pb + 4093, pa, 4);
  assert.throws(() => batch.flush(), /outside registered memory/);
  assert.equal([...b.subarray(20, 24)], [0, 0, 0, 0], 'nothing of a refused batch is copied');
  // Copies still run in order: the second reads what the first wrote.
  batch.add(pb + 30, pa + 100, 4);
  batch.add(pb + 40, pb + 30, 4);
  batch.flush();
  assert.equal([...b.subarray(40, 44)], [1, 2, 3, 4]);
  const pc = pa - 1_000_000; // an address nobody registered
  batch.add(pb, pc, 4);
  assert.throws(() => batch.flush(), /outside registered memory/);
  CopyBatch.release(a);
  CopyBatch.release(b);
  batch.add(pb, pa, 4);
  assert.throws(() => batch.flush(), /outside registered memory/, 'released buffers are no longer allowed');
});

test('a copy that starts inside the range the op before matched but runs past its end is refused, batch and all', () => {
  const a = new Uint8Array(4096);
  const b = new Uint8Array(4096);
  const pa = CopyBatch.addressOf(a);
  const pb = CopyBatch.addressOf(b);
  const batch = new CopyBatch();
  try {
    a.fill(9, 0, 64);
    for (let i = 0; i < 8; i++) batch.add(pb + 64 * i, pa, 64);
    // Same two ranges as the eight before it, one byte too long at either end.
    batch.add(pb + 4096 - 63, pa, 64);
    assert.throws(() => batch.flush(), /outside registered memory/);
    batch.add(pb, pa + 4096 - 63, 64);
    assert.throws(() => batch.flush(), /outside registered memory/);
    assert.is(b[0], 0, 'nothing of a refused batch is copied');
    for (let i = 0; i < 8; i++) batch.add(pb + 64 * i, pa, 64);
    batch.flush();
    assert.is(b[511], 9);
  } finally {
    CopyBatch.release(a);
    CopyBatch.release(b);
  }
});

test('a NaN, negative, infinite or 2^53+ address or length is refused, not cast', () => {
  const a = new Uint8Array(256);
  const pa = CopyBatch.addressOf(a);
  const batch = new CopyBatch();
  try {
    for (const [dst, src, len] of [
      [Number.NaN, pa, 4],
      [pa, -8, 4],
      [pa, pa + 8, 2 ** 53],
      [2 ** 64, pa, 4],
      [pa, Number.POSITIVE_INFINITY, 4],
    ] as const) {
      batch.add(dst, src, len);
      assert.throws(() => batch.flush(), /not an integer below 2\^53|outside registered memory/, `${dst} <- ${src} (${len})`);
    }
    // The same buffer still copies afterwards: the hints left behind by refusals do not matter.
    a[8] = 7;
    batch.add(pa, pa + 8, 1);
    batch.flush();
    assert.is(a[0], 7);
  } finally {
    CopyBatch.release(a);
  }
});

test('registrations are counted: two holders need two releases', () => {
  const a = new Uint8Array(256);
  const p1 = CopyBatch.addressOf(a);
  const p2 = CopyBatch.addressOf(a);
  assert.is(p1, p2);
  const batch = new CopyBatch();
  CopyBatch.release(a);
  batch.add(p1, p1 + 128, 8);
  batch.flush(); // still held once
  CopyBatch.release(a);
  batch.add(p1, p1 + 128, 8);
  assert.throws(() => batch.flush(), /outside registered memory/);
});

test('3000 queue pairs created and disposed over fresh memory do not exhaust the registry', () => {
  for (let i = 0; i < 3000; i++) {
    const bytes = new Uint8Array(64 * 1024);
    const memory = new GuestMemory([{ gpa: 0, bytes }]);
    const q = (index: number, base: number) => ({ index, size: 16, kind: 'split' as const, enabled: true, descAddr: base, driverAddr: base + 0x400, deviceAddr: base + 0x800 });
    const pair = new NetQueuePair({
      memory, rx: q(0, 0x1000), tx: q(1, 0x2000), features: 1n << 32n, mergeable: false,
      offloads: { csum: false, tso: false }, backend: new LoopbackQueue({ slots: 4 }), signal: () => {}, onBroken: () => {},
    });
    pair.dispose();
  }
});

test.run();
