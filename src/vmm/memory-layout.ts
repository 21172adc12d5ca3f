// Guest-physical layout of the x86 machine: RAM from 0 up to the 32-bit PCI
// hole, the rest above 4 GiB; the hole holds the PCI MMIO window and, at its
// top, the IOAPIC/LAPIC pages and the TSS/identity-map pages KVM needs.
export const GIB = 1024 ** 3;
export const LOW_RAM_LIMIT = 3 * GIB;
export const HIGH_RAM_BASE = 4 * GIB;
export const PCI_MMIO32 = { base: 0xc000_0000, size: 0xfec0_0000 - 0xc000_0000 } as const;
/** KVM_SET_TSS_ADDR needs three pages below 4 GiB outside RAM; the identity map one more. */
export const KVM_TSS_ADDR = 0xfffb_d000;
export const KVM_IDENTITY_MAP_ADDR = 0xfffb_c000;

export interface RamSlot {
  slot: number;
  /** Guest-physical base. */
  gpa: number;
  /** Byte offset in the RAM mapping. */
  offset: number;
  size: number;
}

/** How `bytes` of RAM are placed around the PCI hole (2 MiB granularity). */
export function ramSlots(bytes: number): RamSlot[] {
  if (!Number.isSafeInteger(bytes) || bytes < 16 << 20 || bytes % (2 << 20) !== 0)
    throw new RangeError(`memory size must be a multiple of 2 MiB and at least 16 MiB (got ${bytes})`);
  const low = Math.min(bytes, LOW_RAM_LIMIT);
  const slots: RamSlot[] = [{ slot: 0, gpa: 0, offset: 0, size: low }];
  if (bytes > low) slots.push({ slot: 1, gpa: HIGH_RAM_BASE, offset: low, size: bytes - low });
  return slots;
}

/** Parses a QEMU-style size: 256M, 1G, 512 (MiB when no suffix, as QEMU's -m). */
export function parseMemorySize(text: string): number {
  const m = /^(\d+)([KMGT]?)i?B?$/i.exec(text.trim());
  if (!m) throw new RangeError(`'${text}' is not a size (e.g. 256M, 2G)`);
  const unit = { '': 2 ** 20, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 }[m[2]!.toUpperCase() as '' | 'K' | 'M' | 'G' | 'T'];
  return Number(m[1]) * unit;
}
