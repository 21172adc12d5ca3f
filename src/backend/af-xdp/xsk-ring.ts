// The four AF_XDP rings as seen from user space: single-producer/single-
// consumer, free-running u32 indices, power-of-two sizes. Our side caches
// the other side's index and re-reads it (acquire) only when the cache says
// the ring is full/empty; publishing an index is a release store after the
// descriptors are written (Atomics.store is sequentially consistent, which
// is stronger than needed and costs one fence per batch).
// Entries: Fill/Completion hold u64 UMEM addresses; Rx/Tx hold struct
// xdp_desc {u64 addr; u32 len; u32 options}. UMEM addresses stay below
// 2^32 here (the UMEM is far smaller), so the high words are written 0.
// The free-running indices are kept as int32 (`| 0`), the same bits mod
// 2^32: as uint32 they would pass 2^31 after 2^31 entries and V8 would keep
// them, and everything computed from them, as doubles from then on (the TX
// path measured 50% slower in the half of the index range above 2^31).
import { xsk, type RingOffsets } from '../../native/xsk';

const NEED_WAKEUP = xsk.constants.XDP_RING_NEED_WAKEUP;

abstract class XskRing {
  readonly size: number;
  readonly mask: number;
  protected readonly producer: Uint32Array;
  protected readonly consumer: Uint32Array;
  private readonly flags: Uint32Array;
  /** The descriptor area as u32 words. */
  readonly words: Uint32Array;

  constructor(readonly buffer: ArrayBuffer, readonly offsets: RingOffsets, size: number, entryBytes: number) {
    if (size <= 0 || (size & (size - 1)) !== 0) throw new RangeError(`ring size ${size} is not a power of two`);
    this.size = size;
    this.mask = size - 1;
    this.producer = new Uint32Array(buffer, offsets.producer, 1);
    this.consumer = new Uint32Array(buffer, offsets.consumer, 1);
    this.flags = new Uint32Array(buffer, offsets.flags, 1);
    this.words = new Uint32Array(buffer, offsets.desc, (size * entryBytes) / 4);
  }

  /** The kernel asks to be woken (XDP_USE_NEED_WAKEUP). */
  needsWakeup(): boolean {
    return (this.flags[0]! & NEED_WAKEUP) !== 0;
  }

  /** Entries currently in the ring (producer - consumer), read fresh from both indices. */
  occupancy(): number {
    return (Atomics.load(this.producer, 0) - Atomics.load(this.consumer, 0)) >>> 0;
  }

  protected loadProducer(): number {
    return Atomics.load(this.producer, 0) | 0;
  }

  protected loadConsumer(): number {
    return Atomics.load(this.consumer, 0) | 0;
  }
}

/** A ring we produce into (Fill, Tx). */
export class ProducerRing extends XskRing {
  private cachedProd: number;
  private cachedCons: number;
  /** The consumer index as pending() last read it. */
  private seenCons: number;

  constructor(buffer: ArrayBuffer, offsets: RingOffsets, size: number, entryBytes: number) {
    super(buffer, offsets, size, entryBytes);
    this.cachedProd = this.loadProducer();
    this.seenCons = this.loadConsumer();
    this.cachedCons = (this.seenCons + size) | 0;
  }

  /**
   * Entries submitted that the kernel has not consumed yet. Our producer index is our own, so only the
   * consumer is read, and not at all once it was seen to have caught up and nothing was submitted since
   * (the I/O loop asks every round; an idle round then costs no shared-memory read here).
   */
  pending(): number {
    if (this.seenCons === this.cachedProd) return 0;
    this.seenCons = this.loadConsumer();
    return (this.cachedProd - this.seenCons) | 0;
  }

  /** Free slots, at least `wanted` if that many exist (re-reads the consumer only when needed). */
  free(wanted: number): number {
    let free = (this.cachedCons - this.cachedProd) | 0;
    if (free >= wanted) return free;
    this.cachedCons = (this.loadConsumer() + this.size) | 0;
    free = (this.cachedCons - this.cachedProd) | 0;
    return free;
  }

  /** Index (already masked) of the n-th slot after the last reserved one. */
  slot(n: number): number {
    return (this.cachedProd + n) & this.mask;
  }

  /** Makes `n` written slots visible to the kernel. */
  submit(n: number): void {
    this.cachedProd = (this.cachedProd + n) | 0;
    Atomics.store(this.producer, 0, this.cachedProd);
  }
}

/** A ring we consume from (Completion, Rx). */
export class ConsumerRing extends XskRing {
  private cachedProd: number;
  private cachedCons: number;

  constructor(buffer: ArrayBuffer, offsets: RingOffsets, size: number, entryBytes: number) {
    super(buffer, offsets, size, entryBytes);
    this.cachedProd = this.loadProducer();
    this.cachedCons = this.loadConsumer();
  }

  /** Entries ready, at most `max` (re-reads the producer only when the cache is empty). */
  available(max: number): number {
    let n = (this.cachedProd - this.cachedCons) | 0;
    if (n === 0) {
      this.cachedProd = this.loadProducer();
      n = (this.cachedProd - this.cachedCons) | 0;
    }
    return n < max ? n : max;
  }

  /** Entries ready, at most `max`, with the producer read again (available() trusts a non-empty cache). */
  refresh(max: number): number {
    this.cachedProd = this.loadProducer();
    const n = (this.cachedProd - this.cachedCons) | 0;
    return n < max ? n : max;
  }

  /** Index (already masked) of the n-th unconsumed entry. */
  slot(n: number): number {
    return (this.cachedCons + n) & this.mask;
  }

  /** Hands `n` consumed entries back to the kernel. */
  release(n: number): void {
    this.cachedCons = (this.cachedCons + n) | 0;
    Atomics.store(this.consumer, 0, this.cachedCons);
  }
}
