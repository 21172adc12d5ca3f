// A loopback backend with multi-buffer's shape and no kernel: Tx frames
// larger than one `segment`-byte buffer span several (txNext), and every
// flushed frame comes back as a received one split into buffers of
// `rxSegment` bytes, taken from the free list in reverse order so that no
// frame is contiguous. Device tests use it to walk the multi-buffer paths
// (TxFrameLayout, checksum fields split between buffers, TSO, Rx scatter).
import { TX_BUSY, TX_OVERSIZE, acquireEach, commitEach, type BackendFrames, type NetBackendQueue } from '../../src/backend/net-backend';
import { QueueCounters } from '../../src/backend/queue-counters';

export class SegmentedLoopback implements NetBackendQueue {
  readonly maxFrameSize: number;
  readonly txSegmentSize: number;
  readonly txBuffer: Uint8Array;
  readonly rxBuffer: Uint8Array;
  readonly pollFd = -1;
  readonly counters = new QueueCounters();
  private readonly free: number[] = [];
  private readonly next = new Map<number, number>();
  private readonly pending: Array<{ off: number; len: number }> = [];
  /** Received frames: their buffers (offset, length). */
  private readonly rx: Array<Array<[number, number]>> = [];

  constructor(
    readonly segment: number,
    readonly rxSegment: number,
    readonly buffers = 256,
    maxSegments = 18,
  ) {
    this.txSegmentSize = segment;
    this.maxFrameSize = segment * maxSegments;
    this.txBuffer = this.rxBuffer = new Uint8Array(buffers * segment);
    for (let i = 0; i < buffers; i++) this.free.push(i * segment);
  }

  /** Buffers neither free nor in a received frame: must be 0 whenever nothing is acquired or committed. */
  get leaked(): number {
    return this.buffers - this.free.length - this.rx.reduce((n, f) => n + f.length, 0);
  }

  txAcquire(length: number): number {
    if (length > this.maxFrameSize) return TX_OVERSIZE;
    const n = Math.max(1, Math.ceil(length / this.segment));
    if (this.free.length < n) return TX_BUSY;
    const first = this.free.pop()!;
    let prev = first;
    for (let k = 1; k < n; k++) {
      const b = this.free.pop()!;
      this.next.set(prev, b);
      prev = b;
    }
    return first;
  }

  txNext(offset: number): number {
    const n = this.next.get(offset);
    if (n === undefined) throw new Error(`txNext(${offset}): not in a chain`);
    return n;
  }

  txCommit(offset: number, length: number): void {
    this.pending.push({ off: offset, len: length });
  }

  txAcquireBurst(lengths: Uint32Array, offsets: Float64Array, n: number): number {
    return acquireEach(this, lengths, offsets, n);
  }

  txCommitBurst(offsets: Float64Array, lengths: Uint32Array, n: number): void {
    commitEach(this, offsets, lengths, n);
  }

  txCancel(offset: number): void {
    for (let b: number | undefined = offset; b !== undefined; ) {
      const n = this.next.get(b);
      this.next.delete(b);
      this.free.push(b);
      b = n;
    }
  }

  /** The bytes of a Tx frame, read through its chain. */
  private gather(off: number, len: number): Uint8Array {
    const out = new Uint8Array(len);
    let b: number | undefined = off;
    for (let pos = 0; pos < len; pos += this.segment) {
      if (b === undefined) throw new Error('chain shorter than its frame');
      out.set(this.txBuffer.subarray(b, b + Math.min(this.segment, len - pos)), pos);
      const n = this.next.get(b);
      this.next.delete(b);
      this.free.push(b);
      b = n;
    }
    if (b !== undefined) throw new Error('chain longer than its frame');
    return out;
  }

  txFlush(): void {
    for (const p of this.pending.splice(0)) this.inject(this.gather(p.off, p.len));
  }

  /** A frame as if from the wire, split into rxSegment-byte buffers. */
  inject(frame: Uint8Array): void {
    const bufs: Array<[number, number]> = [];
    for (let pos = 0; pos < frame.length; pos += this.rxSegment) {
      const b = this.free.shift();
      if (b === undefined) throw new Error('segmented loopback: out of buffers');
      const len = Math.min(this.rxSegment, frame.length - pos);
      this.rxBuffer.set(frame.subarray(pos, pos + len), b);
      bufs.push([b, len]);
    }
    this.rx.push(bufs);
  }

  rxPeek(max: number): number {
    return Math.min(max, this.rx.length);
  }

  rxOffset(i: number): number {
    return this.rx[i]![0]![0];
  }

  rxHeadroom(_i: number): number {
    return 0;
  }

  rxLength(i: number): number {
    return this.rx[i]!.reduce((n, [, len]) => n + len, 0);
  }

  rxSegments(i: number): number {
    return this.rx[i]!.length;
  }

  rxSegmentOffset(i: number, k: number): number {
    return this.rx[i]![k]![0];
  }

  rxSegmentLength(i: number, k: number): number {
    return this.rx[i]![k]![1];
  }

  rxRelease(n: number): void {
    for (const f of this.rx.splice(0, n)) for (const [b] of f) this.free.push(b);
  }

  txUnsent(): number {
    return 0;
  }

  get frameCount(): number {
    return this.buffers;
  }

  frameAccounting(): BackendFrames {
    const rx = this.rx.reduce((n, f) => n + f.length, 0);
    const tx = this.buffers - this.free.length - rx;
    return { pool: this.free.length, fill: 0, rx, tx, completion: 0, total: this.buffers };
  }
}
