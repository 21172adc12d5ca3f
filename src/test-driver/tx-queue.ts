// A transmit queue as the driver fills it (§5.1.6.2): each chain is a
// virtio_net_hdr followed by one Ethernet frame, device-readable only,
// laid out over as many descriptors as the caller asks (VERSION_1 lets the
// driver split them any way, §2.7.4 / §5.1.6.2), directly or through an
// indirect table. Used chains are reclaimed and their buffers reused.
import type { DriverBuffer } from '../fuzz/guest-access';
import { BufferPool, splitLengths } from './buffer-pool';
import type { DriverQueue } from './driver-queue';
import type { GuestRam } from './guest-ram';
import { NET_HDR_SIZE, type NetHeader, writeNetHeader } from './net-header';

export interface SendOptions {
  /** Header fields (NEEDS_CSUM, GSO); zero by default. */
  readonly header?: Partial<NetHeader>;
  /** Descriptors to spread header + frame over (default 1). */
  readonly descriptors?: number;
  /** The header in a descriptor of its own, the frame in the rest. */
  readonly separateHeader?: boolean;
  /** Exact descriptor lengths, summing to header + frame (overrides descriptors/separateHeader). */
  readonly lengths?: readonly number[];
  /** Offer the chain through an indirect table. */
  readonly indirect?: boolean;
}

/** Buffer slot size: a 1514-byte frame and its header fit. */
const TX_SLOT = 2048;

export class TxQueue {
  /** Chains the device has returned. */
  completed = 0;
  private readonly pool: BufferPool;
  private readonly slotOf = new Map<number, number>();

  constructor(
    readonly queue: DriverQueue,
    private readonly ram: GuestRam,
  ) {
    this.pool = new BufferPool(ram, queue.size, TX_SLOT);
  }

  /** Chains offered and not yet returned. */
  get inFlight(): number {
    return this.slotOf.size;
  }

  /**
   * Queues one frame (not yet published: call kick()). Returns false when
   * the ring has no room even after reclaiming used chains.
   */
  add(frame: Uint8Array, o: SendOptions = {}): boolean {
    const total = NET_HDR_SIZE + frame.length;
    if (this.queue.freeDescriptors === 0 || this.queue.outstanding >= this.queue.size) this.reclaim();
    let buf = this.pool.take(total);
    if (!buf) {
      this.reclaim();
      buf = this.pool.take(total);
    }
    if (!buf) return false;
    const [slot, gpa] = buf;
    const off = this.ram.offsetOf(gpa);
    writeNetHeader(this.ram.bytes, off, o.header ?? {});
    this.ram.bytes.set(frame, off + NET_HDR_SIZE);
    const n = o.descriptors ?? 1;
    const lens = o.lengths ?? (o.separateHeader ? [NET_HDR_SIZE, ...splitLengths(frame.length, n - 1)] : splitLengths(total, n));
    if (lens.reduce((a, b) => a + b, 0) !== total) throw new RangeError(`descriptor lengths ${lens.join('+')} do not add up to ${total}`);
    const buffers: DriverBuffer[] = [];
    let at = gpa;
    for (const len of lens) {
      buffers.push({ addr: at, len, write: false });
      at += len;
    }
    let id = this.queue.add(buffers, o.indirect ?? false);
    if (id < 0) {
      this.reclaim();
      id = this.queue.add(buffers, o.indirect ?? false);
    }
    if (id < 0) {
      this.pool.give(slot);
      return false;
    }
    this.slotOf.set(id, slot);
    return true;
  }

  /** Publishes and notifies if the device wants it. */
  kick(): boolean {
    return this.queue.kick();
  }

  /** Collects used chains and frees their buffers. Returns how many. */
  reclaim(): number {
    const used = this.queue.pollUsed();
    for (const u of used) {
      const slot = this.slotOf.get(u.id);
      if (slot === undefined) continue;
      this.slotOf.delete(u.id);
      this.pool.give(slot);
    }
    this.completed += used.length;
    return used.length;
  }
}
