// An allocation-free split-ring fast path for benchmarks, the way a poll-mode
// driver runs a queue (§2.7.13, §2.7.14): descriptor i points at buffer i
// unless the driver moves buffers between rings (`swapBuffers`, as a
// forwarding PMD hands a received mbuf to transmit), so offering a buffer is
// one avail-ring write, and used elements are read straight from the used
// ring into preallocated arrays. Takes over
// a DriverQueue that has had no chains added through it (and publishes for
// it from then on: do not call the queue's publish()/kick() as well).
import { DescFlags, SplitAvail, SplitUsed, splitAvailEventOffset } from 'virtio-spec-types';
import { vringNeedEvent } from '../virtio/queue/event-idx';
import type { SplitRingDriver } from '../fuzz/split-ring-driver';
import type { DriverQueue } from './driver-queue';
import type { GuestRam } from './guest-ram';

export class SplitBufferRing {
  readonly size: number;
  /** Guest-physical address of buffer 0; buffer i is at base + i * bufferSize. */
  readonly base: number;
  /** Ids and lengths of the elements found by the last pollUsed(). */
  readonly usedIds: Uint32Array;
  readonly usedLens: Uint32Array;
  private readonly ring: SplitRingDriver;
  private readonly usedIdx: Uint16Array;
  private readonly usedElems: Uint32Array;
  /** The descriptor table as le32 words: addr lo, addr hi, len, flags | next << 16 (16 bytes each). */
  private readonly descWords: Uint32Array;
  /** Guest-physical address of GuestRam.bytes[0]. */
  private readonly ramBase: number;
  private readonly availRing: Uint16Array;
  private readonly mask: number;
  /** avail->idx, and the device's avail_event (EVENT_IDX) or used->flags, as u16 views (Atomics: the device may be another thread). */
  private readonly availIdxAt: Uint16Array;
  private readonly deviceEvent: Uint16Array;
  private published: number;
  /** The driver's avail index: offers advance it, kick() publishes it (and keeps the ring's in step). */
  private availIdx: number;
  private lastUsed = 0;

  constructor(
    readonly queue: DriverQueue,
    ram: GuestRam,
    readonly bufferSize: number,
    /** Device-writable buffers (receive) or device-readable ones (transmit). */
    writable: boolean,
  ) {
    if (!queue.split) throw new RangeError('SplitBufferRing needs a split ring');
    if (queue.outstanding !== 0) throw new RangeError('SplitBufferRing takes over an unused queue');
    this.ring = queue.split;
    this.size = queue.size;
    this.base = ram.alloc(this.size * bufferSize, 64);
    this.ramBase = ram.base;
    for (let i = 0; i < this.size; i++) this.ring.writeDescriptor(i, this.base + i * bufferSize, bufferSize, writable ? DescFlags.WRITE : 0, 0);
    const usedOff = ram.offsetOf(queue.deviceAddr);
    this.usedIdx = new Uint16Array(ram.buffer, usedOff + SplitUsed.IDX, 1);
    this.usedElems = new Uint32Array(ram.buffer, usedOff + SplitUsed.RING, 2 * this.size);
    this.descWords = new Uint32Array(ram.buffer, ram.offsetOf(queue.descAddr), 4 * this.size);
    this.availRing = new Uint16Array(ram.buffer, ram.offsetOf(queue.driverAddr) + SplitAvail.RING, this.size);
    this.mask = this.size - 1;
    this.availIdxAt = new Uint16Array(ram.buffer, ram.offsetOf(queue.driverAddr) + SplitAvail.IDX, 1);
    this.deviceEvent = new Uint16Array(ram.buffer, usedOff + (queue.eventIdx ? splitAvailEventOffset(this.size) : SplitUsed.FLAGS), 1);
    this.published = this.ring.availIdx;
    this.availIdx = this.published;
    this.usedIds = new Uint32Array(this.size);
    this.usedLens = new Uint32Array(this.size);
    this.lastUsed = this.usedIdx[0]!;
  }

  /** Offset in GuestRam.bytes of the buffer descriptor i points at (the driver writes and reads its buffers there). */
  bufferOffset(i: number): number {
    return this.descWords[4 * i]! + this.descWords[4 * i + 1]! * 0x1_0000_0000 - this.ramBase;
  }

  /**
   * Exchanges the buffers behind descriptor i of this ring and descriptor j of `other` (same buffer size),
   * both owned by the driver (used, not yet offered again): the forwarding PMD's zero-copy hand-over.
   */
  swapBuffers(i: number, other: SplitBufferRing, j: number): void {
    const a = this.descWords;
    const b = other.descWords;
    const lo = a[4 * i]!;
    const hi = a[4 * i + 1]!;
    a[4 * i] = b[4 * j]!;
    a[4 * i + 1] = b[4 * j + 1]!;
    b[4 * j] = lo;
    b[4 * j + 1] = hi;
  }

  /** Makes buffer i available holding `len` bytes (transmit) or with `len` bytes of room (receive). */
  offer(i: number, len: number): void {
    const at = 4 * i + 2; // le32 len of descriptor i (16-byte descriptors: u32 index 4i + 2)
    if (this.descWords[at] !== len) this.descWords[at] = len;
    // What SplitRingDriver.offerHead does, on an index kept here (kick() hands it back to the ring).
    const idx = this.availIdx;
    this.availRing[idx & this.mask] = i;
    this.availIdx = (idx + 1) & 0xffff;
  }

  /**
   * Publishes avail->idx and notifies if the device asked (§2.7.10). Returns whether it notified.
   * The index store is seq-cst, so the read of the device's suppression state after it cannot move
   * ahead of it (a device in another thread that just re-armed would otherwise miss its kick).
   */
  kick(): boolean {
    const now = this.availIdx;
    const old = this.published;
    if (now === old) return false;
    this.ring.availIdx = now;
    Atomics.store(this.availIdxAt, 0, now);
    this.published = now;
    const event = Atomics.load(this.deviceEvent, 0);
    const need = this.queue.eventIdx ? vringNeedEvent(event, now, old) : (event & 1) === 0; // VIRTQ_USED_F_NO_NOTIFY
    if (need) this.queue.notify();
    return need;
  }

  /** Used elements since the last call, at most `max`: their ids and lengths are in usedIds/usedLens[0, n). */
  pollUsed(max = this.size): number {
    const idx = Atomics.load(this.usedIdx, 0);
    let n = (idx - this.lastUsed) & 0xffff;
    if (n > max) n = max;
    const mask = this.mask;
    const elems = this.usedElems;
    for (let k = 0; k < n; k++) {
      const e = ((this.lastUsed + k) & mask) << 1;
      this.usedIds[k] = elems[e]!;
      this.usedLens[k] = elems[e + 1]!;
    }
    this.lastUsed = (this.lastUsed + n) & 0xffff;
    return n;
  }
}
