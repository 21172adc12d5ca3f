// PCI 3.0 §3.2.2.3.2: configuration mechanism #1. A DWORD write to 0xCF8
// selects bus/device/function/register; 0xCFC..0xCFF then carry the data,
// with byte lanes selected by the port's low two bits.

export const PCI_CONFIG_ADDRESS_PORT = 0xcf8;
export const PCI_CONFIG_DATA_PORT = 0xcfc;
/** Bit 31: configuration cycles are generated only while it is set. */
export const PCI_CONFIG_ADDRESS_ENABLE = 0x8000_0000;
/** Bits that hold state: enable, bus (23:16), device (15:11), function (10:8), register (7:2). */
export const PCI_CONFIG_ADDRESS_MASK = 0x80ff_fffc;

export interface PciConfigTarget {
  readonly bus: number;
  readonly device: number;
  readonly function: number;
  /** DWORD-aligned register offset 0..0xfc. */
  readonly register: number;
}

/** The CONFIG_ADDRESS value that selects `target` (enable bit set). */
export function encodeConfigAddress(target: PciConfigTarget): number {
  return (
    (PCI_CONFIG_ADDRESS_ENABLE |
      ((target.bus & 0xff) << 16) |
      ((target.device & 0x1f) << 11) |
      ((target.function & 0x7) << 8) |
      (target.register & 0xfc)) >>>
    0
  );
}

/** Decodes a CONFIG_ADDRESS value; undefined while the enable bit is clear. */
export function decodeConfigAddress(address: number): PciConfigTarget | undefined {
  if ((address & PCI_CONFIG_ADDRESS_ENABLE) === 0) return undefined;
  return {
    bus: (address >>> 16) & 0xff,
    device: (address >>> 11) & 0x1f,
    function: (address >>> 8) & 0x7,
    register: address & 0xfc,
  };
}
