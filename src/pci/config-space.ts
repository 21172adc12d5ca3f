// The bytes of one function's configuration space together with, per byte,
// which bits the guest may write and which are write-one-to-clear. Device
// code initialises registers through the `set*` methods (no masks); guest
// writes go through `write`, which applies the masks (PCI 3.0 §6.1: read-only
// bits ignore writes, reserved registers read 0).
import { type AccessSize, extractLanes } from './access';
import { PCI_CONFIG_SPACE_SIZE } from './config-header';

export class PciConfigSpace {
  private readonly bytes = new Uint8Array(PCI_CONFIG_SPACE_SIZE);
  private readonly writable = new Uint8Array(PCI_CONFIG_SPACE_SIZE);
  private readonly writeOneToClear = new Uint8Array(PCI_CONFIG_SPACE_SIZE);

  get size(): number {
    return PCI_CONFIG_SPACE_SIZE;
  }

  /**
   * Whether a guest access is well formed: 1, 2 or 4 bytes inside one DWORD
   * (configuration transactions carry one DWORD address plus byte enables).
   */
  static isValidAccess(offset: number, size: number): size is AccessSize {
    return (
      (size === 1 || size === 2 || size === 4) &&
      Number.isInteger(offset) &&
      offset >= 0 &&
      offset + size <= PCI_CONFIG_SPACE_SIZE &&
      (offset & 3) + size <= 4
    );
  }

  get8(offset: number): number {
    return this.bytes[offset] ?? 0;
  }

  get16(offset: number): number {
    return this.get8(offset) | (this.get8(offset + 1) << 8);
  }

  get32(offset: number): number {
    return (this.get16(offset) | (this.get16(offset + 2) << 16)) >>> 0;
  }

  /** Raw read of `size` bytes (the caller validated the access). */
  read(offset: number, size: AccessSize): number {
    return extractLanes(this.get32(offset & ~3), offset & 3, size);
  }

  set8(offset: number, value: number): void {
    this.bytes[offset] = value & 0xff;
  }

  set16(offset: number, value: number): void {
    this.set8(offset, value);
    this.set8(offset + 1, value >>> 8);
  }

  set32(offset: number, value: number): void {
    this.set16(offset, value);
    this.set16(offset + 2, value >>> 16);
  }

  /** Marks bits writable by the guest: `mask` covers `size` bytes from `offset`. */
  setWritable(offset: number, size: AccessSize, mask: number): void {
    for (let i = 0; i < size; i++) this.writable[offset + i] = (mask >>> (8 * i)) & 0xff;
  }

  /** Marks bits as write-one-to-clear (status error bits). */
  setWriteOneToClear(offset: number, size: AccessSize, mask: number): void {
    for (let i = 0; i < size; i++) this.writeOneToClear[offset + i] = (mask >>> (8 * i)) & 0xff;
  }

  /** A guest write: writable bits take the value, W1C bits clear where 1 is written, the rest stay. */
  write(offset: number, size: AccessSize, value: number): void {
    for (let i = 0; i < size; i++) {
      const at = offset + i;
      const v = (value >>> (8 * i)) & 0xff;
      const old = this.bytes[at] ?? 0;
      const w = this.writable[at] ?? 0;
      const c = this.writeOneToClear[at] ?? 0;
      this.bytes[at] = ((old & ~w) | (v & w)) & ~(v & c);
    }
  }
}
