// Virtqueue memory layouts (virtio 1.2 §2.6-§2.8): byte offsets, sizes,
// alignments and flag bits for split and packed rings. All multi-byte fields
// are little-endian.

/** §2.6 / §2.7 / §2.8: a virtqueue has at most 2^15 entries. */
export const QUEUE_SIZE_MAX = 32768;

/** Descriptor flag bits common to both layouts (VIRTQ_DESC_F_*, §2.7.5 / §2.8.4-§2.8.7). */
export const DescFlags = {
  /** The buffer continues in the next descriptor. */
  NEXT: 1,
  /** Device write-only (otherwise device read-only). */
  WRITE: 2,
  /** The buffer is an indirect descriptor table. */
  INDIRECT: 4,
} as const;

// ---------------------------------------------------------------- split ring

/** §2.7.5 `struct virtq_desc`: 16 bytes. */
export const SplitDesc = {
  SIZE: 16,
  /** le64 guest-physical address. */
  ADDR: 0,
  /** le32 length in bytes. */
  LEN: 8,
  /** le16 DescFlags. */
  FLAGS: 12,
  /** le16 index of the next descriptor when flags has NEXT. */
  NEXT: 14,
} as const;

/** §2.7.6 `struct virtq_avail` (Driver Area of a split queue). */
export const SplitAvail = {
  FLAGS: 0,
  /** Where the driver will put the next descriptor head (free-running, mod 2^16). */
  IDX: 2,
  /** le16 ring[Queue Size] starts here. */
  RING: 4,
  ENTRY_SIZE: 2,
} as const;

/** §2.7.8 `struct virtq_used` (Device Area of a split queue). */
export const SplitUsed = {
  FLAGS: 0,
  /** Where the device will put the next used element (free-running, mod 2^16). */
  IDX: 2,
  /** struct virtq_used_elem ring[Queue Size] starts here. */
  RING: 4,
  /** `struct virtq_used_elem { le32 id; le32 len; }` */
  ELEM_SIZE: 8,
  ELEM_ID: 0,
  ELEM_LEN: 4,
} as const;

/** §2.7.6: avail->flags bit: the driver does not want used buffer notifications. */
export const VIRTQ_AVAIL_F_NO_INTERRUPT = 1;
/** §2.7.8: used->flags bit: the device does not want available buffer notifications. */
export const VIRTQ_USED_F_NO_NOTIFY = 1;

/** §2.7 / §2.7.1: minimum alignment of each split-queue part, in bytes. */
export const SplitAlign = {
  DESC: 16,
  AVAIL: 2,
  USED: 4,
} as const;

/** Bytes of a split descriptor table of `queueSize` entries. */
export function splitDescTableSize(queueSize: number): number {
  return SplitDesc.SIZE * queueSize;
}

/** Bytes of a split avail ring including used_event (§2.7: 6 + 2 * Queue Size). */
export function splitAvailSize(queueSize: number): number {
  return 6 + SplitAvail.ENTRY_SIZE * queueSize;
}

/** Bytes of a split used ring including avail_event (§2.7: 6 + 8 * Queue Size). */
export function splitUsedSize(queueSize: number): number {
  return 6 + SplitUsed.ELEM_SIZE * queueSize;
}

/** §2.7.7: offset of `used_event` (le16, written by the driver) in the avail ring. */
export function splitUsedEventOffset(queueSize: number): number {
  return SplitAvail.RING + SplitAvail.ENTRY_SIZE * queueSize;
}

/** §2.7.7: offset of `avail_event` (le16, written by the device) in the used ring. */
export function splitAvailEventOffset(queueSize: number): number {
  return SplitUsed.RING + SplitUsed.ELEM_SIZE * queueSize;
}

// --------------------------------------------------------------- packed ring

/** §2.8.13 `struct pvirtq_desc`: 16 bytes. */
export const PackedDesc = {
  SIZE: 16,
  /** le64 guest-physical address (unused in used descriptors). */
  ADDR: 0,
  /** le32 length; in a used descriptor: bytes written by the device. */
  LEN: 8,
  /** le16 Buffer ID (taken from the last descriptor of a chain, §2.8.6). */
  ID: 12,
  /** le16 PackedDescFlags. */
  FLAGS: 14,
} as const;

/** §2.8.1 / §2.8.4-§2.8.7: packed descriptor flag bits. */
export const PackedDescFlags = {
  NEXT: DescFlags.NEXT,
  WRITE: DescFlags.WRITE,
  INDIRECT: DescFlags.INDIRECT,
  /** Equals the Driver Ring Wrap Counter when made available. */
  AVAIL: 1 << 7,
  /** Equals the Device Ring Wrap Counter when used (and AVAIL is set to the same value). */
  USED: 1 << 15,
} as const;

/** §2.8.14 `struct pvirtq_event_suppress`: 4 bytes, in the Driver and in the Device Area. */
export const EventSuppression = {
  SIZE: 4,
  /** le16: desc_event_off (bits 0-14) | desc_event_wrap (bit 15). */
  DESC: 0,
  /** le16: desc_event_flags (bits 0-1), the rest reserved. */
  FLAGS: 2,
  OFFSET_MASK: 0x7fff,
  WRAP_SHIFT: 15,
  FLAGS_MASK: 0x3,
} as const;

/** §2.8.10: values of desc_event_flags. */
export const RingEventFlags = {
  ENABLE: 0,
  DISABLE: 1,
  /** Only with VIRTIO_F_EVENT_IDX: notify when the given descriptor offset/wrap is reached. */
  DESC: 2,
} as const;

export type RingEventFlag = (typeof RingEventFlags)[keyof typeof RingEventFlags];

/** §2.8.10.1 / §2.8.11: minimum alignment of each packed-queue part, in bytes. */
export const PackedAlign = {
  DESC: 16,
  DRIVER_EVENT: 4,
  DEVICE_EVENT: 4,
} as const;

/** Bytes of a packed descriptor ring of `queueSize` entries. */
export function packedDescRingSize(queueSize: number): number {
  return PackedDesc.SIZE * queueSize;
}
