// One available buffer as the device sees it: the chain of guest memory
// ranges a driver offered, with indirect tables already resolved. The device
// preallocates one (or a few) and lets `pop` refill it, so taking a buffer
// allocates nothing. Every range in a filled chain has been checked to lie
// wholly inside one guest memory region, and the device should use only the
// snapshot here, never re-read the descriptors (the guest may rewrite them).
import type { GuestMemory } from '../../memory/guest-memory';
import { QueueError } from './queue-error';

const TWO_POW_32 = 0x1_0000_0000;
const U32_MAX = 0xffff_ffff;

export class DescriptorChain {
  /** Split: index of the head descriptor (< Queue Size). Packed: the Buffer ID (u16) from the list's last descriptor (§2.8.6). */
  headId = 0;
  /** Buffers in the chain (the descriptor that points to an indirect table is not one). */
  count = 0;
  /** Ring descriptors the chain occupies; packed `push` needs it to skip forward (§2.8.6). An indirect chain occupies 1. */
  ringSlots = 0;
  /** Buffers 0..readableCount-1 are device-readable, the rest device-writable (§2.7.4.2). */
  readableCount = 0;
  /** Sum of readable lengths. */
  readableLength = 0;
  /** Sum of writable lengths. */
  writableLength = 0;

  /** Guest-physical address of each buffer. */
  addr: Float64Array;
  /** Length of each buffer in bytes. */
  len: Uint32Array;
  /** 1 when the buffer is device-writable. */
  writable: Uint8Array;
  /** Guest memory region holding each buffer: `memory.regionBytes(region[i])`. */
  region: Int32Array;
  /** Byte offset of each buffer within its region. */
  offset: Float64Array;

  /**
   * `capacity` is usually the queue's size; 0 (the size of a queue that
   * stopped itself at set-up) is accepted. A queue grows a smaller chain
   * to its own size on first pop.
   */
  constructor(capacity = 256) {
    if (!Number.isInteger(capacity) || capacity < 0) throw new RangeError(`chain capacity ${capacity} is not a non-negative integer`);
    capacity = Math.max(1, capacity);
    this.addr = new Float64Array(capacity);
    this.len = new Uint32Array(capacity);
    this.writable = new Uint8Array(capacity);
    this.region = new Int32Array(capacity);
    this.offset = new Float64Array(capacity);
  }

  get capacity(): number {
    return this.len.length;
  }

  /** Grows the arrays to hold `capacity` buffers (allocates; a queue calls it once if the chain is smaller than the queue). */
  ensureCapacity(capacity: number): void {
    if (capacity <= this.len.length) return;
    const grow = <T extends Float64Array | Uint32Array | Uint8Array | Int32Array>(old: T, fresh: T): T => {
      fresh.set(old);
      return fresh;
    };
    this.addr = grow(this.addr, new Float64Array(capacity));
    this.len = grow(this.len, new Uint32Array(capacity));
    this.writable = grow(this.writable, new Uint8Array(capacity));
    this.region = grow(this.region, new Int32Array(capacity));
    this.offset = grow(this.offset, new Float64Array(capacity));
  }

  /** Empties the chain (the arrays keep their stale contents beyond `count`). */
  clear(): void {
    this.headId = 0;
    this.count = 0;
    this.ringSlots = 0;
    this.readableCount = 0;
    this.readableLength = 0;
    this.writableLength = 0;
  }

  /**
   * Appends one buffer read from a descriptor, enforcing the rules every
   * chain obeys whatever the ring layout: at most `maxCount` buffers, no
   * readable buffer after a writable one (§2.7.4.2), total length below
   * 2^32, and the whole range inside guest memory. The address comes as the
   * descriptor's two le32 halves so values of 2^53 and more (which a number
   * cannot hold exactly) are rejected without rounding. Returns
   * QueueError.None or the rule broken; the chain is then unusable.
   */
  append(memory: GuestMemory, addrLo: number, addrHi: number, len: number, writable: boolean, maxCount: number): QueueError {
    const i = this.count;
    if (i >= maxCount) return QueueError.ChainTooLong;
    if (!writable && i > this.readableCount) return QueueError.ReadableAfterWritable;
    if (this.readableLength + this.writableLength + len > U32_MAX) return QueueError.LengthOverflow;
    // hi >= 2^21 means addr >= 2^53: outside any region. `find` rejects it and counts it.
    const addr = addrHi * TWO_POW_32 + addrLo;
    const r = memory.find(addr, len);
    if (r < 0) return QueueError.AddressOutOfRange;
    this.addr[i] = addr;
    this.len[i] = len;
    this.region[i] = r;
    this.offset[i] = memory.regionOffset(r, addr);
    if (writable) {
      this.writable[i] = 1;
      this.writableLength += len;
    } else {
      this.writable[i] = 0;
      this.readableLength += len;
      this.readableCount = i + 1;
    }
    this.count = i + 1;
    return QueueError.None;
  }
}
