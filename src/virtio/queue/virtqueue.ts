// The one interface a device uses to service a virtqueue, whatever its
// layout (split §2.7 or packed §2.8), and the factory that picks the layout.
//
// Device loop (one thread per queue, no locks):
//
//   queue.disableNotifications();
//   for (;;) {
//     while (queue.pop(chain)) {
//       if (!canTakeNow) { queue.undo(); break; }   // backpressure: offered again next time
//                                                   // (mark()/rewind() for several buffers)
//       ...use chain...
//       queue.push(chain.headId, written, chain.ringSlots);
//     }
//     if (queue.flush()) signalUsed();              // used idx / flags published once per batch
//     if (!queue.enableNotifications()) break;      // re-check: buffers may have arrived meanwhile
//     queue.disableNotifications();
//   }
//   if (queue.broken) markNeedsReset();             // queue.error says why
//
// Nothing here throws on anything the guest controls: ring addresses, sizes
// and contents. A violation stops the queue (see QueueError).
import { VirtioFeature, featureBit } from 'virtio-spec-types';
import type { GuestMemory } from '../../memory/guest-memory';
import type { BufferBurst } from './buffer-burst';
import type { DescriptorChain } from './descriptor-chain';
import { PackedQueue } from './packed-queue';
import type { QueueError, QueueErrorCounters } from './queue-error';
import { SplitQueue } from './split-queue';

/** The negotiated features that change how a ring is read (derive with `queueFeaturesFrom`). */
export interface QueueFeatures {
  /** VIRTIO_F_EVENT_IDX (§2.7.7, §2.7.10, §2.8.10). */
  readonly eventIdx: boolean;
  /** VIRTIO_F_INDIRECT_DESC (§2.7.5.3, §2.8.7). */
  readonly indirect: boolean;
}

/** Where the driver put the queue, as the transport received it. */
export interface QueueLayout {
  /** Queue Size: split 1..32768 and a power of 2; packed 1..32768. */
  readonly size: number;
  /** Descriptor Area: descriptor table (split) or descriptor ring (packed). */
  readonly descAddr: number;
  /** Driver Area: avail ring (split) or driver event suppression (packed). */
  readonly driverAddr: number;
  /** Device Area: used ring (split) or device event suppression (packed). */
  readonly deviceAddr: number;
}

export interface QueueOptions {
  readonly features: QueueFeatures;
  /** Shared violation counters (e.g. one per device); a private one when omitted. */
  readonly counters?: QueueErrorCounters;
  /**
   * Resume point for a queue that was already running (vhost-user
   * SET_VRING_BASE, migration). Split: the next avail index (u16). Packed:
   * next descriptor offset | avail wrap counter << 15. Default: a fresh ring.
   */
  readonly availBase?: number;
  /** As availBase, for the device's used side (split: used idx; packed: offset | used wrap << 15). */
  readonly usedBase?: number;
}

export type QueueLayoutKind = 'split' | 'packed';

export interface Virtqueue {
  readonly kind: QueueLayoutKind;
  readonly size: number;
  /** QueueError.None while healthy; the first violation once the queue has stopped itself. */
  readonly error: QueueError;
  /** The queue stopped itself: pop() returns false and push()/flush() do nothing until it is rebuilt. */
  readonly broken: boolean;
  /** Where the next pop() will read, in `availBase` encoding (for vhost-user GET_VRING_BASE). */
  readonly nextAvail: number;
  /** Where the next push() will write, in `usedBase` encoding. */
  readonly nextUsed: number;

  /**
   * Fills `chain` with the next available buffer and returns true, or
   * returns false when there is none (or the queue is broken). Validates the
   * whole chain first; on a violation the queue stops and returns false.
   */
  pop(chain: DescriptorChain): boolean;
  /**
   * Reads, without taking them, up to `max` next available buffers that are each one descriptor (neither
   * NEXT nor INDIRECT) inside guest memory, into `burst`; returns how many. It stops before anything else,
   * which pop() then takes (and judges: a violation stops the queue there). 0: nothing available, or the
   * next buffer is for pop(). Split rings only; packed rings return 0.
   */
  peekBurst(burst: BufferBurst, max: number): number;
  /**
   * Takes the first `count` buffers of the last peekBurst() and returns them used, each with `burst.written`
   * bytes written (0 for a buffer the device only read, §2.7.8). Not visible to the driver until flush().
   */
  retireBurst(burst: BufferBurst, count: number): void;
  /**
   * Takes the first `count` buffers of the last peekBurst() without returning them: each is in flight, as if
   * popped, until the device push()es it (head id from the burst, one ring slot). For buffers another party
   * still reads after the call (guest RAM as the UMEM: the kernel transmits them in place).
   */
  holdBurst(burst: BufferBurst, count: number): void;
  /**
   * Gives back the buffer returned by the last pop() so the next pop()
   * returns it again (backpressure). Only the most recent pop, and only if
   * it has not been pushed. Returns false when there is nothing to undo.
   */
  undo(): boolean;
  /**
   * Remembers the current position for rewind(): a device that needs
   * several buffers for one item (mergeable receive buffers, §5.1.6.4) marks,
   * pops, and rewinds if it cannot use them all.
   */
  mark(): void;
  /**
   * Gives back every buffer popped since the last mark() (or since the
   * queue was built) so the next pops return them again, in order. None of
   * them may have been pushed. Returns the number of buffers given back.
   */
  rewind(): number;
  /**
   * Returns a popped buffer to the driver with `writtenLen` bytes written
   * into its writable part. `ringSlots` is `chain.ringSlots` of that buffer
   * (packed rings skip by it, §2.8.6; split rings ignore it). Not visible to
   * the driver until flush().
   */
  push(headId: number, writtenLen: number, ringSlots: number): void;
  /**
   * Publishes everything pushed since the last flush (elements first, then
   * the index or the batch's first flags) and returns whether the driver
   * wants a used buffer notification (§2.7.7, §2.8.10).
   */
  flush(): boolean;
  /**
   * Asks the driver for available buffer notifications again, then re-checks
   * the ring: returns true when buffers arrived meanwhile (keep polling; they
   * may not have been notified). `after` > 1 (split rings with EVENT_IDX)
   * asks to be notified only once that many buffers are available, and
   * returns true only when that many already are: a caller that sleeps on it
   * must also wake on a timeout, since a driver need not post that many.
   * Packed rings and rings without EVENT_IDX treat it as 1.
   */
  enableNotifications(after?: number): boolean;
  /** Tells the driver not to notify (a hint: the device is polling). */
  disableNotifications(): void;
  /** Whether pop() would find a buffer now (validates the avail index like pop). */
  hasAvailable(): boolean;
  /** Stops the queue as if the driver had broken a rule (e.g. a buffer the device cannot accept). */
  stop(reason: QueueError): void;
}

/** The ring-relevant booleans of a negotiated feature set (set-up path). */
export function queueFeaturesFrom(features: bigint): QueueFeatures {
  return {
    eventIdx: (features & featureBit(VirtioFeature.EVENT_IDX)) !== 0n,
    indirect: (features & featureBit(VirtioFeature.INDIRECT_DESC)) !== 0n,
  };
}

/** The ring layout a negotiated feature set selects (VIRTIO_F_RING_PACKED). */
export function queueLayoutKindFrom(features: bigint): QueueLayoutKind {
  return (features & featureBit(VirtioFeature.RING_PACKED)) !== 0n ? 'packed' : 'split';
}

/** A split or packed queue as VIRTIO_F_RING_PACKED was negotiated (never throws on guest-provided layout values). */
export function createVirtqueue(memory: GuestMemory, kind: QueueLayoutKind, layout: QueueLayout, options: QueueOptions): Virtqueue {
  return kind === 'packed' ? new PackedQueue(memory, layout, options) : new SplitQueue(memory, layout, options);
}
