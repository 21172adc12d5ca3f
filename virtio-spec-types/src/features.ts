// Device-independent feature bits (virtio 1.2 §6 "Reserved Feature Bits") and
// the bigint helpers used during feature negotiation. Feature words are 64+
// bits wide, so negotiation uses bigint; that is set-up code only; the data
// path works with the booleans derived from it.

/** Feature bit numbers shared by all device types (§6). */
export const VirtioFeature = {
  /** Legacy only: notify the driver when the avail ring becomes empty. */
  NOTIFY_ON_EMPTY: 24,
  /** Legacy only: the device accepts arbitrary descriptor layouts. */
  ANY_LAYOUT: 27,
  /** §2.7.5.3 / §2.8.7: the driver may use indirect descriptor tables. */
  INDIRECT_DESC: 28,
  /** §2.7.7 / §2.7.10 / §2.8.10: used_event / avail_event and descriptor-specific event suppression. */
  EVENT_IDX: 29,
  /** Compliance with virtio 1.x (as opposed to legacy 0.9.5). */
  VERSION_1: 32,
  /** The device is behind an IOMMU / uses platform-specific address translation. */
  ACCESS_PLATFORM: 33,
  /** §2.8: packed virtqueue layout. */
  RING_PACKED: 34,
  /** §2.7.9 / §2.8.8: buffers are used in the order they were made available. */
  IN_ORDER: 35,
  /** Memory accesses must be ordered as required by the platform (real hardware). */
  ORDER_PLATFORM: 36,
  /** Single Root I/O Virtualization. */
  SR_IOV: 37,
  /** The driver passes extra data in available buffer notifications. */
  NOTIFICATION_DATA: 38,
  /** The device supplies notification config data (virtio 1.2 added, transport-specific). */
  NOTIF_CONFIG_DATA: 39,
  /** §2.6.1: individual virtqueue reset. */
  RING_RESET: 40,
  /** Administration virtqueues (virtio 1.3). */
  ADMIN_VQ: 41,
} as const;

export type VirtioFeatureBit = (typeof VirtioFeature)[keyof typeof VirtioFeature];

/** Highest feature bit number any transport can express (128 bits in virtio-pci). */
export const FEATURE_BIT_MAX = 127;

/** The single-bit mask for feature bit number `bit`. Throws RangeError for a bit outside 0..127. */
export function featureBit(bit: number): bigint {
  if (!Number.isInteger(bit) || bit < 0 || bit > FEATURE_BIT_MAX) {
    throw new RangeError(`feature bit ${bit} is not in 0..${FEATURE_BIT_MAX}`);
  }
  return 1n << BigInt(bit);
}

/** The mask with every listed feature bit set. */
export function featureMask(...bits: readonly number[]): bigint {
  let mask = 0n;
  for (const bit of bits) mask |= featureBit(bit);
  return mask;
}

/** Whether `features` has feature bit number `bit` set. */
export function hasFeature(features: bigint, bit: number): boolean {
  return (features & featureBit(bit)) !== 0n;
}

/**
 * The 32-bit word `select` of a feature set, as virtio-pci's
 * device_feature_select / driver_feature_select expose it (§4.1.4.3).
 */
export function featureWord(features: bigint, select: number): number {
  if (!Number.isInteger(select) || select < 0) throw new RangeError(`feature word ${select} is not a non-negative integer`);
  return Number((features >> BigInt(32 * select)) & 0xffffffffn);
}

/** `features` with 32-bit word `select` replaced by `value` (driver_feature writes, §4.1.4.3). */
export function withFeatureWord(features: bigint, select: number, value: number): bigint {
  if (!Number.isInteger(select) || select < 0) throw new RangeError(`feature word ${select} is not a non-negative integer`);
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) throw new RangeError(`feature word value ${value} is not a u32`);
  const shift = BigInt(32 * select);
  return (features & ~(0xffffffffn << shift)) | (BigInt(value) << shift);
}
