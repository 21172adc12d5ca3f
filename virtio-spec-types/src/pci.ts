// virtio 1.2 §4.1 (Virtio Over PCI Bus) constants and structure layouts, plus
// the pieces of the PCI Local Bus spec 3.0 they rest on (class codes,
// capability ids, MSI-X §6.8.2). Offsets are byte offsets; all multi-byte
// fields are little-endian.

/** §4.1.2: every virtio PCI function carries this vendor id. */
export const VIRTIO_PCI_VENDOR_ID = 0x1af4;
/** §4.1.2: modern (non-transitional) device id = 0x1040 + virtio device id. */
export const VIRTIO_PCI_MODERN_DEVICE_ID_BASE = 0x1040;
/** §4.1.2: last id of the virtio range (0x1000..0x107f). */
export const VIRTIO_PCI_DEVICE_ID_LAST = 0x107f;
/** §4.1.2.1: non-transitional devices SHOULD have revision 1 or higher. */
export const VIRTIO_PCI_MODERN_REVISION = 1;
/** §4.1.2.1: the subsystem vendor id MAY reflect the environment; we use the virtio vendor. */
export const VIRTIO_PCI_SUBSYSTEM_VENDOR_ID = 0x1af4;
/** §4.1.2.1: non-transitional devices SHOULD have a subsystem device id of 0x40 or higher. */
export const VIRTIO_PCI_MIN_SUBSYSTEM_ID = 0x40;

/** PCI device id of a modern virtio device of the given virtio device type (§5). */
export function virtioPciDeviceId(deviceType: number): number {
  return VIRTIO_PCI_MODERN_DEVICE_ID_BASE + deviceType;
}

/** PCI base class codes (PCI Code and ID Assignment spec) that virtio devices and the host bridge use. */
export const PciBaseClass = {
  MASS_STORAGE: 0x01,
  NETWORK: 0x02,
  DISPLAY: 0x03,
  BRIDGE: 0x06,
  COMMUNICATION: 0x07,
  SYSTEM_PERIPHERAL: 0x08,
  UNASSIGNED: 0xff,
} as const;

/** Sub-classes of PciBaseClass.NETWORK. */
export const PciNetworkSubclass = { ETHERNET: 0x00, OTHER: 0x80 } as const;
/** Sub-classes of PciBaseClass.BRIDGE. */
export const PciBridgeSubclass = { HOST: 0x00, ISA: 0x01, PCI_TO_PCI: 0x04 } as const;

/** PCI capability ids (PCI 3.0 Appendix H). */
export const PciCapabilityId = {
  POWER_MANAGEMENT: 0x01,
  MSI: 0x05,
  VENDOR_SPECIFIC: 0x09,
  PCI_EXPRESS: 0x10,
  MSIX: 0x11,
} as const;

/** §4.1.4: cfg_type of a virtio structure capability. */
export const VirtioPciCapType = {
  COMMON_CFG: 1,
  NOTIFY_CFG: 2,
  ISR_CFG: 3,
  DEVICE_CFG: 4,
  PCI_CFG: 5,
  SHARED_MEMORY_CFG: 8,
  VENDOR_CFG: 9,
} as const;

/** §4.1.4: struct virtio_pci_cap (16 bytes). */
export const VirtioPciCap = {
  CAP_VNDR: 0,
  CAP_NEXT: 1,
  CAP_LEN: 2,
  CFG_TYPE: 3,
  BAR: 4,
  ID: 5,
  PADDING: 6,
  OFFSET: 8,
  LENGTH: 12,
  SIZE: 16,
} as const;

/** §4.1.4: struct virtio_pci_cap64 (virtio_pci_cap + offset_hi + length_hi). */
export const VirtioPciCap64 = { OFFSET_HI: 16, LENGTH_HI: 20, SIZE: 24 } as const;

/** §4.1.4.4: struct virtio_pci_notify_cap (virtio_pci_cap + notify_off_multiplier). */
export const VirtioPciNotifyCap = { NOTIFY_OFF_MULTIPLIER: 16, SIZE: 20 } as const;

/** §4.1.4.9: struct virtio_pci_cfg_cap (virtio_pci_cap + pci_cfg_data[4]). */
export const VirtioPciCfgCap = { PCI_CFG_DATA: 16, SIZE: 20 } as const;

/** §4.1.4.3: struct virtio_pci_common_cfg as of virtio 1.2 (ends after queue_reset). */
export const VirtioPciCommonCfg = {
  DEVICE_FEATURE_SELECT: 0, // le32 rw
  DEVICE_FEATURE: 4, // le32 ro
  DRIVER_FEATURE_SELECT: 8, // le32 rw
  DRIVER_FEATURE: 12, // le32 rw
  CONFIG_MSIX_VECTOR: 16, // le16 rw
  NUM_QUEUES: 18, // le16 ro
  DEVICE_STATUS: 20, // u8 rw
  CONFIG_GENERATION: 21, // u8 ro
  QUEUE_SELECT: 22, // le16 rw
  QUEUE_SIZE: 24, // le16 rw
  QUEUE_MSIX_VECTOR: 26, // le16 rw
  QUEUE_ENABLE: 28, // le16 rw
  QUEUE_NOTIFY_OFF: 30, // le16 ro
  QUEUE_DESC_LO: 32, // le64 rw, as two le32 halves
  QUEUE_DESC_HI: 36,
  QUEUE_DRIVER_LO: 40,
  QUEUE_DRIVER_HI: 44,
  QUEUE_DEVICE_LO: 48,
  QUEUE_DEVICE_HI: 52,
  QUEUE_NOTIFY_DATA: 56, // le16 ro, only with VIRTIO_F_NOTIF_CONFIG_DATA
  QUEUE_RESET: 58, // le16 rw, only with VIRTIO_F_RING_RESET
  SIZE: 60,
} as const;

/** §4.1.4.5: ISR status bits. */
export const VirtioPciIsr = { QUEUE: 0x1, CONFIG: 0x2 } as const;

/** §4.1.5.1.2: "no MSI-X vector" for config_msix_vector / queue_msix_vector. */
export const VIRTIO_MSI_NO_VECTOR = 0xffff;
/** §4.1.5.1.2: a device SHOULD support at most 0x800 vectors (the MSI-X maximum). */
export const VIRTIO_PCI_MAX_MSIX_VECTORS = 0x800;

/** PCI 3.0 §6.8.2: MSI-X capability structure (12 bytes). */
export const MsixCap = {
  CAP_ID: 0,
  CAP_NEXT: 1,
  MESSAGE_CONTROL: 2, // le16
  TABLE: 4, // le32: offset (bits 31:3) | BIR (bits 2:0)
  PBA: 8, // le32: offset (bits 31:3) | BIR (bits 2:0)
  SIZE: 12,
} as const;

/** PCI 3.0 §6.8.2.3: MSI-X Message Control bits. */
export const MsixControl = {
  /** Bits 10:0, read-only: table size N encoded as N - 1. */
  TABLE_SIZE_MASK: 0x07ff,
  FUNCTION_MASK: 1 << 14,
  ENABLE: 1 << 15,
} as const;

/** PCI 3.0 §6.8.2.4/5: BIR field of the table and PBA offset registers. */
export const MSIX_BIR_MASK = 0x7;

/** PCI 3.0 §6.8.2.6-9: one MSI-X table entry (16 bytes). */
export const MsixTableEntry = {
  MESSAGE_ADDRESS_LO: 0,
  MESSAGE_ADDRESS_HI: 4,
  MESSAGE_DATA: 8,
  VECTOR_CONTROL: 12,
  SIZE: 16,
} as const;

/** PCI 3.0 §6.8.2.9: Vector Control bit 0 masks the vector; it is set after reset. */
export const MSIX_VECTOR_CONTROL_MASK = 0x1;
/** PCI 3.0 §6.8.2.10: the PBA is an array of 64-bit words, one bit per vector. */
export const MSIX_PBA_ENTRY_SIZE = 8;
/** PCI 3.0 §6.8.2: at most 2048 vectors. */
export const MSIX_MAX_VECTORS = 2048;
