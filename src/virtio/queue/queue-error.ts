// Why a virtqueue stopped itself. A queue that sees the driver break a ring
// rule records the first violation, counts it, and from then on offers no
// more buffers; the device reports it as DEVICE_NEEDS_RESET (§2.1.2). Codes
// are small integers so counting them needs no allocation.

export const QueueError = {
  None: 0,
  // Set-up (the driver's queue configuration).
  /** Queue size 0, above 32768, or (split) not a power of 2 (§2.6, §2.7). */
  InvalidQueueSize: 1,
  /** A ring part is not aligned as §2.7 / §2.8.10.1 require. */
  RingMisaligned: 2,
  /** A ring part is not wholly inside one guest memory region. */
  RingOutOfRange: 3,
  /** The resume point (availBase / usedBase) is not a position in the ring. */
  InvalidRingBase: 21,
  // Available ring.
  /** Split: avail->idx moved more than Queue Size past the last seen entry (§2.7.13.3). */
  AvailIdxJump: 4,
  /** Split: a head index in the avail ring is not below Queue Size. */
  HeadOutOfRange: 5,
  /** More buffers made available than descriptors free: the driver reused ones the device still holds. */
  RingOverrun: 6,
  // Descriptor chains.
  /** A `next` index is not below Queue Size (or below the indirect table's length). */
  NextOutOfRange: 7,
  /** A chain visits the same descriptor twice. */
  DescriptorLoop: 8,
  /** A chain has more descriptors than Queue Size (§2.7.5.3.1, §2.8.17). */
  ChainTooLong: 9,
  /** A readable descriptor follows a writable one (§2.7.4.2, §2.8.17). */
  ReadableAfterWritable: 10,
  /** The sum of a chain's lengths exceeds 2^32 - 1. */
  LengthOverflow: 11,
  /** A buffer (or indirect table) is not wholly inside one guest memory region. */
  AddressOutOfRange: 12,
  // Indirect descriptors.
  /** INDIRECT used although VIRTIO_F_INDIRECT_DESC was not negotiated. */
  IndirectNotNegotiated: 13,
  /** INDIRECT together with NEXT (§2.7.5.3.1, §2.8.19). */
  IndirectWithNext: 14,
  /** Packed: an INDIRECT descriptor inside a NEXT-linked list (§2.8.19). */
  IndirectInChain: 15,
  /** An INDIRECT descriptor inside an indirect table (§2.7.5.3.1). */
  NestedIndirect: 16,
  /** Indirect table length is 0 or not a multiple of 16 bytes. */
  IndirectLength: 17,
  /** Indirect table has more entries than Queue Size. */
  IndirectTooLong: 18,
  // The device's own use of the queue.
  /** push() without a matching pop(), or with an id / length / slot count out of range. */
  DeviceMisuse: 19,
  /** The device stopped the queue itself (stop()) for a reason of its own. */
  DeviceRejected: 20,
} as const;

export type QueueError = (typeof QueueError)[keyof typeof QueueError];

/** Number of codes, for arrays indexed by QueueError. */
export const QUEUE_ERROR_COUNT = 22;

const NAMES: readonly string[] = (() => {
  const names: string[] = new Array<string>(QUEUE_ERROR_COUNT).fill('unknown');
  for (const [name, code] of Object.entries(QueueError)) names[code] = name;
  return names;
})();

/** Stable name of a code, e.g. "DescriptorLoop" (for logs, JSON reports). */
export function queueErrorName(code: number): string {
  return NAMES[code] ?? 'unknown';
}

/**
 * Violation counts by code. One instance may be shared by all queues of a
 * device (or a fuzz run) to aggregate; counting never allocates.
 */
export class QueueErrorCounters {
  readonly counts = new Uint32Array(QUEUE_ERROR_COUNT);
  total = 0;

  record(code: QueueError): void {
    this.counts[code]++;
    this.total++;
  }

  /** Non-zero counts by name (allocates: reporting only). */
  toJSON(): Record<string, number> {
    const out: Record<string, number> = {};
    for (let code = 1; code < QUEUE_ERROR_COUNT; code++) {
      if (this.counts[code] !== 0) out[queueErrorName(code)] = this.counts[code];
    }
    return out;
  }
}
