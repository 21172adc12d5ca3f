// How the simulated drivers (tests, fuzz) write rings: the little-endian
// accessors GuestMemory already has. The fuzz engine passes its own
// implementation that writes the backing buffer directly, so guest-side
// writes never show up in the device-side `outOfRange` count.
export interface GuestAccess {
  readU16(gpa: number): number;
  readU32(gpa: number): number;
  writeU16(gpa: number, value: number): void;
  writeU32(gpa: number, value: number): void;
}

/** One buffer of a chain as a driver offers it. */
export interface DriverBuffer {
  readonly addr: number;
  readonly len: number;
  /** Device-writable (otherwise device-readable). */
  readonly write: boolean;
}

/** A buffer returned by the device. */
export interface UsedBuffer {
  readonly id: number;
  readonly len: number;
}

export const TWO_POW_32 = 0x1_0000_0000;

/** Writes a le64 address as two le32 halves (so values up to 2^64 - 1 can be written raw). */
export function writeAddress(guest: GuestAccess, gpa: number, addr: number): void {
  guest.writeU32(gpa, addr % TWO_POW_32);
  guest.writeU32(gpa + 4, Math.floor(addr / TWO_POW_32) >>> 0);
}
