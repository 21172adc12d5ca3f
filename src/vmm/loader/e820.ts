// The BIOS memory map a Linux guest finds in boot_params (zero-page.rst:
// e820_entries at 0x1e8, e820_table at 0x2d0, at most 128 entries of
// struct boot_e820_entry { u64 addr; u64 size; u32 type; }, packed).
// Built from the guest's RAM regions with the holes a PC firmware leaves:
// the EBDA in the last KiB below 640 KiB, the legacy video/ROM area up to
// 1 MiB, and the pages KVM needs below 4 GiB.
import { hex } from '../../hex';

export const enum E820Type {
  Ram = 1,
  Reserved = 2,
  Acpi = 3,
  Nvs = 4,
  Unusable = 5,
}

export interface E820Entry {
  addr: number;
  size: number;
  type: E820Type;
}

export const E820_ENTRY_SIZE = 20;
/** E820_MAX_ENTRIES_ZEROPAGE. */
export const E820_MAX_ENTRIES = 128;

/** Base memory ends at 639 KiB; the last KiB is the EBDA (where the MP table goes). */
export const EBDA_START = 0x9fc00;
/** The video RAM / option ROM / system BIOS area: [640 KiB, 1 MiB). */
export const LEGACY_HOLE_START = 0xa0000;
export const BIOS_ROM_START = 0xf0000;
export const ONE_MIB = 0x10_0000;

export interface RamRange {
  base: number;
  size: number;
}

/**
 * The e820 map for RAM `ram` (sorted, disjoint; the first must start at 0
 * and pass 1 MiB) plus `reserved` ranges outside RAM that the guest must not
 * claim for itself (e.g. KVM's TSS pages). RAM below 1 MiB is usable up to
 * the EBDA; [EBDA, 640 KiB) and the BIOS area [0xF0000, 1 MiB) are listed
 * reserved; [640 KiB, 0xF0000) is left out (no RAM there as far as the guest
 * knows). The result is sorted and non-overlapping.
 */
export function buildE820(ram: readonly RamRange[], reserved: readonly RamRange[] = []): E820Entry[] {
  if (ram.length === 0 || ram[0]!.base !== 0 || ram[0]!.size <= ONE_MIB) {
    throw new RangeError('e820: RAM must start at 0 and extend past 1 MiB');
  }
  const out: E820Entry[] = [
    { addr: 0, size: EBDA_START, type: E820Type.Ram },
    { addr: EBDA_START, size: LEGACY_HOLE_START - EBDA_START, type: E820Type.Reserved },
    { addr: BIOS_ROM_START, size: ONE_MIB - BIOS_ROM_START, type: E820Type.Reserved },
  ];
  for (const [i, r] of ram.entries()) {
    const start = i === 0 ? ONE_MIB : r.base;
    const end = r.base + r.size;
    if (i > 0 && r.base < ram[i - 1]!.base + ram[i - 1]!.size) throw new RangeError(`e820: RAM ranges overlap at ${hex(r.base)}`);
    if (end > start) out.push({ addr: start, size: end - start, type: E820Type.Ram });
  }
  for (const r of reserved) {
    if (out.some((e) => r.base < e.addr + e.size && e.addr < r.base + r.size)) continue;
    out.push({ addr: r.base, size: r.size, type: E820Type.Reserved });
  }
  out.sort((a, b) => a.addr - b.addr);
  if (out.length > E820_MAX_ENTRIES) throw new RangeError(`e820: ${out.length} entries, boot_params holds ${E820_MAX_ENTRIES}`);
  return out;
}

/** Encodes entries as boot_e820_entry records (the bytes of e820_table[0..n)). */
export function encodeE820(entries: readonly E820Entry[]): Uint8Array {
  const out = new Uint8Array(entries.length * E820_ENTRY_SIZE);
  const dv = new DataView(out.buffer);
  entries.forEach((e, i) => {
    const o = i * E820_ENTRY_SIZE;
    dv.setBigUint64(o, BigInt(e.addr), true);
    dv.setBigUint64(o + 8, BigInt(e.size), true);
    dv.setUint32(o + 16, e.type, true);
  });
  return out;
}
