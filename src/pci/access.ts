// Register access widths and little-endian conversion between the byte
// buffers KVM hands us on PIO/MMIO exits and the numbers registers hold.

/** Width of one register access in bytes (PCI byte enables within one DWORD). */
export type AccessSize = 1 | 2 | 4;

/** All-ones of the given width: what a read of nothing returns (master abort). */
export function allOnes(size: AccessSize): number {
  return size === 4 ? 0xffffffff : size === 2 ? 0xffff : 0xff;
}

export function isAccessSize(n: number): n is AccessSize {
  return n === 1 || n === 2 || n === 4;
}

/** Reads `data.length` (1, 2 or 4) bytes as a little-endian unsigned number. */
export function loadLe(data: Uint8Array, at = 0, size: number = data.length): number {
  let v = 0;
  for (let i = size - 1; i >= 0; i--) v = v * 256 + (data[at + i] ?? 0);
  return v;
}

/** Writes the low `size` bytes of `value` little-endian into `data` at `at`. */
export function storeLe(data: Uint8Array, value: number, at = 0, size: number = data.length): void {
  let v = value >>> 0;
  for (let i = 0; i < size; i++) {
    data[at + i] = v & 0xff;
    v >>>= 8;
  }
}

/**
 * Merges a `size`-byte write of `value` at byte `lane` (0..3) into the 32-bit
 * register `current`: how a partial write (PCI byte enables) updates a DWORD.
 */
export function mergeDword(current: number, lane: number, size: AccessSize, value: number): number {
  const shift = lane * 8;
  const mask = size === 4 ? 0xffffffff : ((1 << (size * 8)) - 1) << shift;
  return ((current & ~mask) | ((value << shift) & mask)) >>> 0;
}

/** Extracts `size` bytes at byte `lane` from a 32-bit register value. */
export function extractLanes(dword: number, lane: number, size: AccessSize): number {
  const v = dword >>> (lane * 8);
  return size === 4 ? v >>> 0 : v & ((1 << (size * 8)) - 1);
}
