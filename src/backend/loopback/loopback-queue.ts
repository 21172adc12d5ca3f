// A backend queue that sends every transmitted frame straight back as a
// received one: the device model's own speed with no kernel involved
// (`xdpvm bench device`), and a deterministic peer for device tests.
// Frames live in fixed slots of one buffer; two index rings carry them from
// Tx to Rx and back to the free list. Allocation-free.
import { TX_BUSY, TX_OVERSIZE, acquireEach, commitEach, type BackendFrames, type NetBackendQueue } from '../net-backend';
import { QueueCounters } from '../queue-counters';

export interface LoopbackOptions {
  slots?: number;
  slotSize?: number;
  /** Bytes kept free at the start of each slot, before the frame (NetBackendQueue.rxHeadroom; default 0). */
  headroom?: number;
}

export class LoopbackQueue implements NetBackendQueue {
  readonly maxFrameSize: number;
  readonly frameCount: number;
  readonly txBuffer: Uint8Array;
  readonly rxBuffer: Uint8Array;
  readonly pollFd = -1;
  readonly counters = new QueueCounters();
  /** Frames in flight (committed or received, not yet released) at most: the slot count. */
  readonly slots: number;
  private readonly free: Uint32Array;
  private freeTop: number;
  // Received frames: a FIFO of slot numbers and lengths.
  private readonly rxSlot: Uint32Array;
  private readonly rxLen: Uint32Array;
  private rxHead = 0;
  private rxCount = 0;
  // Committed but not yet flushed.
  private readonly pendSlot: Uint32Array;
  private readonly pendLen: Uint32Array;
  private pending = 0;
  private readonly shift: number;
  private readonly mask: number;
  private readonly headroom: number;

  constructor(o: LoopbackOptions = {}) {
    this.slots = o.slots ?? 1024;
    if ((this.slots & (this.slots - 1)) !== 0) throw new RangeError('slot count must be a power of two');
    this.mask = this.slots - 1;
    const size = o.slotSize ?? 4096;
    if ((size & (size - 1)) !== 0) throw new RangeError('slot size must be a power of two');
    this.shift = Math.log2(size);
    this.headroom = o.headroom ?? 0;
    if (!Number.isInteger(this.headroom) || this.headroom < 0 || this.headroom >= size) throw new RangeError('headroom must be an integer below the slot size');
    this.maxFrameSize = size - this.headroom;
    this.frameCount = this.slots;
    this.txBuffer = this.rxBuffer = new Uint8Array(this.slots * size);
    this.free = new Uint32Array(this.slots);
    for (let i = 0; i < this.slots; i++) this.free[i] = this.slots - 1 - i;
    this.freeTop = this.slots;
    this.rxSlot = new Uint32Array(this.slots);
    this.rxLen = new Uint32Array(this.slots);
    this.pendSlot = new Uint32Array(this.slots);
    this.pendLen = new Uint32Array(this.slots);
  }

  txAcquire(length: number): number {
    if (length > this.maxFrameSize) {
      this.counters.txDropOversize++;
      return TX_OVERSIZE;
    }
    if (this.freeTop === 0) {
      this.counters.txBusy++;
      return TX_BUSY;
    }
    return (this.free[--this.freeTop]! << this.shift) + this.headroom;
  }

  txCommit(offset: number, length: number): void {
    this.pendSlot[this.pending] = offset >>> this.shift;
    this.pendLen[this.pending] = length;
    this.pending++;
    this.counters.txBytes += length;
  }

  txAcquireBurst(lengths: Uint32Array, offsets: Float64Array, n: number): number {
    return acquireEach(this, lengths, offsets, n);
  }

  txCommitBurst(offsets: Float64Array, lengths: Uint32Array, n: number): void {
    commitEach(this, offsets, lengths, n);
  }

  txCancel(offset: number): void {
    this.free[this.freeTop++] = offset >>> this.shift;
  }

  txFlush(): void {
    for (let i = 0; i < this.pending; i++) this.queueReceived(this.pendSlot[i]!, this.pendLen[i]!);
    this.counters.txPackets += this.pending;
    this.pending = 0;
  }

  /** Nothing waits: a flush hands every frame over at once. */
  txUnsent(): number {
    return 0;
  }

  private queueReceived(slot: number, length: number): void {
    const at = (this.rxHead + this.rxCount) & this.mask;
    this.rxSlot[at] = slot;
    this.rxLen[at] = length;
    this.rxCount++;
  }

  /** Frames sent (flushed) so far. */
  get txFrames(): number {
    return this.counters.txPackets;
  }

  /** Frames the device took so far. */
  get rxFrames(): number {
    return this.counters.rxPackets;
  }

  rxPeek(max: number): number {
    return this.rxCount < max ? this.rxCount : max;
  }

  rxOffset(i: number): number {
    return (this.rxSlot[(this.rxHead + i) & this.mask]! << this.shift) + this.headroom;
  }

  rxHeadroom(_i: number): number {
    return this.headroom;
  }

  rxLength(i: number): number {
    return this.rxLen[(this.rxHead + i) & this.mask]!;
  }

  rxRelease(n: number): void {
    if (n > this.rxCount) n = this.rxCount;
    let bytes = 0;
    for (let i = 0; i < n; i++) {
      const at = (this.rxHead + i) & this.mask;
      this.free[this.freeTop++] = this.rxSlot[at]!;
      bytes += this.rxLen[at]!;
    }
    this.rxHead = (this.rxHead + n) & this.mask;
    this.rxCount -= n;
    this.counters.rxPackets += n;
    this.counters.rxBytes += bytes;
  }

  /** Forgets every frame (all slots free again), keeping the same memory. */
  reset(): void {
    for (let i = 0; i < this.slots; i++) this.free[i] = this.slots - 1 - i;
    this.freeTop = this.slots;
    this.rxHead = 0;
    this.rxCount = 0;
    this.pending = 0;
  }

  /** Injects a frame as if it had arrived from the wire (tests). Returns false when full. */
  inject(frame: Uint8Array): boolean {
    if (frame.length > this.maxFrameSize || this.freeTop === 0) return false;
    const slot = this.free[--this.freeTop]!;
    this.rxBuffer.set(frame, (slot << this.shift) + this.headroom);
    this.queueReceived(slot, frame.length);
    return true;
  }

  /** Every slot accounted for: free + pending + received. */
  accounted(): number {
    return this.freeTop + this.pending + this.rxCount;
  }

  frameAccounting(): BackendFrames {
    return { pool: this.freeTop, fill: 0, rx: this.rxCount, tx: this.pending, completion: 0, total: this.accounted() };
  }
}
