// Multi-buffer ring handling of AfXdpQueue against a simulated kernel (plain
// memory for the four rings, the test playing the kernel's side): Tx chains
// carry XDP_PKT_CONTD on all but the last descriptor and are taken whole or
// not at all; Rx frames of several descriptors are handed over whole, a part
// of one stays on the ring until the rest comes; no UMEM frame is ever lost.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { TX_BUSY, TX_OVERSIZE } from '../src/backend/net-backend';
import { AfXdpQueue, MAX_TX_FRAGS } from '../src/backend/af-xdp/af-xdp-queue';
import { ConsumerRing, ProducerRing } from '../src/backend/af-xdp/xsk-ring';
import type { XskSocket } from '../src/backend/af-xdp/xsk-socket';
import { xsk } from '../src/native/xsk';

const CONTD = xsk.constants.XDP_PKT_CONTD;
const FRAME = 4096;
const HEADROOM = 256;

/** One ring's memory: producer, consumer and flags words, descriptors from byte 64. */
class FakeRing {
  readonly buffer: ArrayBuffer;
  readonly u32: Uint32Array;
  readonly offsets = { producer: 0, consumer: 4, flags: 8, desc: 64 };
  constructor(readonly size: number, readonly entry: number) {
    this.buffer = new ArrayBuffer(64 + size * entry);
    this.u32 = new Uint32Array(this.buffer);
  }
  get producer(): number {
    return this.u32[0]!;
  }
  get consumer(): number {
    return this.u32[1]!;
  }
  /** u32 word index of entry `i` (free-running index). */
  word(i: number): number {
    return 16 + ((i & (this.size - 1)) * this.entry) / 4;
  }
}

interface Kernel {
  queue: AfXdpQueue;
  fill: FakeRing;
  comp: FakeRing;
  rx: FakeRing;
  tx: FakeRing;
  frameCount: number;
  /** The kernel takes `n` frames from the Fill ring (returns their addresses). */
  takeFill(n: number): number[];
  /** The kernel receives one frame into `addrs` (from takeFill), split as `lens`. */
  receive(addrs: number[], lens: number[]): void;
  /** The kernel consumes every Tx descriptor and returns them as [addr, len, options]. */
  consumeTx(): [number, number, number][];
  complete(addrs: number[]): void;
  /** Frames held by user space (pool) plus every ring. */
  total(): number;
}

function kernel(opts: { sg: boolean; frameCount?: number; ringSize?: number; zeroCopy?: boolean }): Kernel {
  const ringSize = opts.ringSize ?? 64;
  const frameCount = opts.frameCount ?? 256;
  const fill = new FakeRing(ringSize, 8);
  const comp = new FakeRing(ringSize, 8);
  const rx = new FakeRing(ringSize, 16);
  const tx = new FakeRing(ringSize, 16);
  const socket = {
    config: { queueId: 0, frameSize: FRAME, frameCount },
    sg: opts.sg,
    zeroCopy: opts.zeroCopy ?? false,
    fd: -1,
    umem: new ArrayBuffer(FRAME * frameCount),
    fill: new ProducerRing(fill.buffer, fill.offsets, ringSize, 8),
    completion: new ConsumerRing(comp.buffer, comp.offsets, ringSize, 8),
    rx: new ConsumerRing(rx.buffer, rx.offsets, ringSize, 16),
    tx: new ProducerRing(tx.buffer, tx.offsets, ringSize, 16),
  };
  const queue = new AfXdpQueue(socket as unknown as XskSocket);
  const k: Kernel = {
    queue,
    fill,
    comp,
    rx,
    tx,
    frameCount,
    takeFill(n) {
      const out: number[] = [];
      for (let i = 0; i < n; i++) {
        assert.ok(fill.producer !== fill.consumer, 'the Fill ring has frames');
        out.push(fill.u32[fill.word(fill.consumer)]!);
        fill.u32[1] = fill.consumer + 1;
      }
      return out;
    },
    receive(addrs, lens) {
      let p = rx.u32[0]!;
      lens.forEach((len, i) => {
        const w = rx.word(p++);
        rx.u32[w] = addrs[i]! + HEADROOM;
        rx.u32[w + 1] = 0;
        rx.u32[w + 2] = len;
        rx.u32[w + 3] = i < lens.length - 1 ? CONTD : 0;
      });
      rx.u32[0] = p;
    },
    consumeTx() {
      const out: [number, number, number][] = [];
      while (tx.consumer !== tx.producer) {
        const w = tx.word(tx.consumer);
        out.push([tx.u32[w]!, tx.u32[w + 2]!, tx.u32[w + 3]!]);
        tx.u32[1] = tx.consumer + 1;
      }
      return out;
    },
    complete(addrs) {
      for (const a of addrs) {
        comp.u32[comp.word(comp.producer)] = a;
        comp.u32[0] = comp.producer + 1;
      }
    },
    total() {
      const occ = (r: FakeRing): number => (r.producer - r.consumer) >>> 0;
      return queue.frameAccounting().pool + occ(fill) + occ(comp) + occ(rx) + occ(tx);
    },
  };
  return k;
}

test('a Tx frame over several UMEM frames is one descriptor per frame, XDP_PKT_CONTD on all but the last', () => {
  const k = kernel({ sg: true });
  const q = k.queue;
  assert.is(q.maxFrameSize, MAX_TX_FRAGS * FRAME);
  const off = q.txAcquire(9000);
  assert.ok(off >= 0);
  const second = q.txNext(off);
  const third = q.txNext(second);
  assert.ok(second >= 0 && third >= 0 && new Set([off, second, third]).size === 3, 'three distinct frames');
  q.txCommit(off, 9000);
  q.txFlush();
  const descs = k.consumeTx();
  assert.equal(descs, [
    [off, FRAME, CONTD],
    [second, FRAME, CONTD],
    [third, 9000 - 2 * FRAME, 0],
  ]);
  assert.is(q.counters.txPackets, 1, 'one frame, three descriptors');
  assert.is(q.counters.txMultiBuffer, 1);
  assert.is(q.counters.txBytes, 9000);
  // A frame of exactly two UMEM frames: no zero-length third descriptor (the kernel treats those as invalid).
  const o2 = q.txAcquire(2 * FRAME);
  q.txCommit(o2, 2 * FRAME);
  q.txFlush();
  assert.equal(k.consumeTx().map((d) => [d[1], d[2]]), [
    [FRAME, CONTD],
    [FRAME, 0],
  ]);
  // The kernel completes each descriptor on its own: every frame returns to the pool.
  k.complete([off, second, third]);
  assert.is(q.txAcquire(100) >= 0, true);
  assert.is(k.total() + 1 + 2, k.frameCount, 'all but the two in flight and the one just acquired are accounted');
});

test('a chain that does not fit is refused whole (TX_BUSY) and takes nothing; a cancelled chain gives every frame back', () => {
  const k = kernel({ sg: true, ringSize: 64 });
  const q = k.queue;
  const singles: number[] = [];
  // 62 of the 64 Tx slots held by acquired single frames: a 3-frame chain cannot get its slots.
  for (let i = 0; i < 62; i++) singles.push(q.txAcquire(100));
  assert.ok(singles.every((o) => o >= 0));
  const poolBefore = q.frameAccounting().pool;
  assert.is(q.txAcquire(9000), TX_BUSY);
  assert.is(q.frameAccounting().pool, poolBefore, 'the refused chain took no frame');
  assert.is(q.counters.txBusy, 1);
  q.txCancel(singles.pop()!);
  const chain = q.txAcquire(9000);
  assert.ok(chain >= 0, 'three slots free: the chain fits');
  assert.is(q.frameAccounting().pool, poolBefore + 1 - 3);
  q.txCancel(chain);
  assert.is(q.frameAccounting().pool, poolBefore + 1, 'all three frames of the cancelled chain are back');
  for (const o of singles) q.txCancel(o);
  assert.is(k.total(), k.frameCount);
  assert.is(k.tx.producer, 0, 'nothing was published');
  // Larger than the longest chain the kernel takes: dropped and counted, nothing taken.
  assert.is(q.txAcquire(MAX_TX_FRAGS * FRAME + 1), TX_OVERSIZE);
  assert.is(q.counters.txDropOversize, 1);
  assert.is(k.total(), k.frameCount);
});

test('Tx slots held by acquired frames count against a later chain (no overrun of the Tx ring)', () => {
  const k = kernel({ sg: true, ringSize: 16, frameCount: 128 });
  const q = k.queue;
  const held: number[] = [];
  for (;;) {
    const o = q.txAcquire(9000);
    if (o < 0) break;
    held.push(o);
  }
  assert.is(held.length, 5, '16 slots hold five 3-descriptor chains');
  for (const o of held) q.txCommit(o, 9000);
  q.txFlush();
  assert.is(k.consumeTx().length, 15);
});

test('without XDP_USE_SG a frame over one UMEM frame is dropped and counted as before', () => {
  const k = kernel({ sg: false });
  const q = k.queue;
  assert.is(q.maxFrameSize, FRAME);
  assert.is(q.txAcquire(FRAME + 1), TX_OVERSIZE);
  assert.is(q.counters.txDropOversize, 1);
  assert.is(k.total(), k.frameCount);
});

test('zero-copy sockets bound with SG receive chains but send one buffer per frame', () => {
  const k = kernel({ sg: true, zeroCopy: true });
  assert.is(k.queue.maxFrameSize, FRAME);
  assert.is(k.queue.txAcquire(FRAME + 1), TX_OVERSIZE);
});

test('Rx frames of several descriptors are handed over whole; a part of one waits on the ring for the rest', () => {
  const k = kernel({ sg: true });
  const q = k.queue;
  const a = k.takeFill(3);
  const b = k.takeFill(3);
  const c = k.takeFill(1);
  k.receive(a, [3840, 3840, 1334]); // 9014 bytes
  k.receive(c, [60]);
  // The first two descriptors of the next frame only (as a peek limited by a cached producer would see it).
  k.receive(b.slice(0, 2), [3840, 3840]);
  // Rewrite the second of them as continued: the frame goes on past what is published.
  k.rx.u32[k.rx.word(k.rx.producer - 1) + 3] = CONTD;
  assert.is(q.rxPeek(64), 2, 'two whole frames; the part of the third is not offered');
  assert.equal([q.rxLength(0), q.rxSegments(0), q.rxLength(1), q.rxSegments(1)], [9014, 3, 60, 1]);
  assert.equal([0, 1, 2].map((i) => q.rxSegmentOffset(0, i)), a.map((x) => x + HEADROOM));
  assert.equal([0, 1, 2].map((i) => q.rxSegmentLength(0, i)), [3840, 3840, 1334]);
  assert.is(q.rxOffset(1), c[0]! + HEADROOM);
  // Only the first frame is taken: all three of its descriptors go, the second frame stays.
  q.rxRelease(1);
  assert.is(k.rx.consumer, 3);
  assert.is(q.counters.rxPackets, 1);
  assert.is(q.counters.rxMultiBuffer, 1);
  assert.is(q.counters.rxBytes, 9014);
  assert.is(q.rxPeek(64), 1, 'the 60-byte frame, still not the part');
  assert.is(q.rxOffset(0), c[0]! + HEADROOM);
  q.rxRelease(1);
  assert.is(q.rxPeek(64), 0, 'a part alone is never a frame');
  q.rxRelease(0);
  assert.is(k.rx.consumer, 4);
  // The rest arrives: the cached producer still shows the part, the peek looks again and takes the whole frame.
  const w = k.rx.word(k.rx.producer);
  k.rx.u32[w] = b[2]! + HEADROOM;
  k.rx.u32[w + 2] = 1000;
  k.rx.u32[w + 3] = 0;
  k.rx.u32[0] = k.rx.producer + 1;
  assert.is(q.rxPeek(64), 1);
  assert.equal([q.rxLength(0), q.rxSegments(0)], [8680, 3]);
  q.rxRelease(1);
  assert.is(k.rx.consumer, 7);
  assert.is(k.total(), k.frameCount, 'every descriptor of every frame went back to the pool or the Fill ring');
});

test('rxPeek(max) counts frames, not descriptors, and a batch boundary never cuts a frame', () => {
  const k = kernel({ sg: true });
  const q = k.queue;
  for (let f = 0; f < 5; f++) k.receive(k.takeFill(3), [3840, 3840, 100 + f]);
  assert.is(q.rxPeek(2), 2);
  assert.equal([q.rxLength(0), q.rxLength(1)], [7780, 7781]);
  q.rxRelease(2);
  assert.is(k.rx.consumer, 6);
  assert.is(q.rxPeek(64), 3);
  assert.is(q.rxLength(2), 7784);
  q.rxRelease(3);
  assert.is(k.total(), k.frameCount);
});

test.run();
