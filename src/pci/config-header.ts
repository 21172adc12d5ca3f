// PCI Local Bus spec 3.0 §6.1/§6.2: the type-0 configuration header and the
// bits of its command and status registers that this model implements.

/** Conventional PCI configuration space size (reachable through mechanism #1). */
export const PCI_CONFIG_SPACE_SIZE = 256;
/** §6.7: capabilities live after the 64-byte predefined header. */
export const PCI_CAPABILITIES_START = 0x40;
/** §6.2.5: six BAR registers in a type-0 header. */
export const PCI_BAR_COUNT = 6;

/** Byte offsets of the type-0 header registers (§6.1, figure 6-1). */
export const PciHeader = {
  VENDOR_ID: 0x00,
  DEVICE_ID: 0x02,
  COMMAND: 0x04,
  STATUS: 0x06,
  REVISION_ID: 0x08,
  PROG_IF: 0x09,
  SUBCLASS: 0x0a,
  CLASS: 0x0b,
  CACHE_LINE_SIZE: 0x0c,
  LATENCY_TIMER: 0x0d,
  HEADER_TYPE: 0x0e,
  BIST: 0x0f,
  BAR0: 0x10,
  CARDBUS_CIS: 0x28,
  SUBSYSTEM_VENDOR_ID: 0x2c,
  SUBSYSTEM_ID: 0x2e,
  EXPANSION_ROM: 0x30,
  CAPABILITIES_POINTER: 0x34,
  INTERRUPT_LINE: 0x3c,
  INTERRUPT_PIN: 0x3d,
  MIN_GNT: 0x3e,
  MAX_LAT: 0x3f,
} as const;

/** Command register bits (§6.2.2). */
export const PciCommand = {
  IO_SPACE: 1 << 0,
  MEMORY_SPACE: 1 << 1,
  BUS_MASTER: 1 << 2,
  PARITY_ERROR_RESPONSE: 1 << 6,
  SERR_ENABLE: 1 << 8,
  INTERRUPT_DISABLE: 1 << 10,
} as const;

/** Status register bits (§6.2.3). */
export const PciStatus = {
  /** Read-only: the function's INTx is asserted (before Interrupt Disable). */
  INTERRUPT: 1 << 3,
  /** Read-only: the capabilities pointer at 0x34 is valid. */
  CAPABILITIES_LIST: 1 << 4,
  /** Error bits: read, and write 1 to clear. */
  MASTER_DATA_PARITY_ERROR: 1 << 8,
  SIGNALED_TARGET_ABORT: 1 << 11,
  RECEIVED_TARGET_ABORT: 1 << 12,
  RECEIVED_MASTER_ABORT: 1 << 13,
  SIGNALED_SYSTEM_ERROR: 1 << 14,
  DETECTED_PARITY_ERROR: 1 << 15,
} as const;

/** Status bits that are write-one-to-clear. */
export const PCI_STATUS_WRITE_ONE_TO_CLEAR =
  PciStatus.MASTER_DATA_PARITY_ERROR |
  PciStatus.SIGNALED_TARGET_ABORT |
  PciStatus.RECEIVED_TARGET_ABORT |
  PciStatus.RECEIVED_MASTER_ABORT |
  PciStatus.SIGNALED_SYSTEM_ERROR |
  PciStatus.DETECTED_PARITY_ERROR;

/** Header type register (§6.2.1). */
export const PciHeaderType = { TYPE0: 0x00, MULTI_FUNCTION: 0x80 } as const;

/** Low bits of a BAR register (§6.2.5.1). */
export const PciBarFlags = {
  IO_SPACE: 0x1,
  MEMORY_TYPE_64: 0x4,
  PREFETCHABLE: 0x8,
} as const;

/** Interrupt pin register values (§6.2.4): 0 = none, 1..4 = INTA#..INTD#. */
export const PciInterruptPin = { NONE: 0, INTA: 1, INTB: 2, INTC: 3, INTD: 4 } as const;

/** §6.2.4: on x86, an interrupt line of 0xff means "unknown / not connected". */
export const PCI_INTERRUPT_LINE_UNKNOWN = 0xff;
