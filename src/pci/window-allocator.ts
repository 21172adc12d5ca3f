// Bump allocation of BAR addresses inside an address window the VMM
// reserves for PCI (a hole in the guest-physical map, or I/O ports).

export interface PciWindow {
  readonly base: number;
  readonly size: number;
}

export class WindowAllocator {
  private next: number;

  constructor(
    readonly name: string,
    readonly window: PciWindow,
  ) {
    if (!Number.isInteger(window.base) || !Number.isInteger(window.size) || window.base < 0 || window.size <= 0) {
      throw new Error(`${name}: window base 0x${window.base.toString(16)} size 0x${window.size.toString(16)} is not a valid range`);
    }
    this.next = window.base;
  }

  /** Allocates `size` bytes aligned to `alignment` (a power of two); throws when the window is full. */
  allocate(size: number, alignment: number): number {
    const address = Math.ceil(this.next / alignment) * alignment;
    if (address + size > this.window.base + this.window.size) {
      throw new Error(`${this.name}: no room for 0x${size.toString(16)} bytes (window 0x${this.window.base.toString(16)}+0x${this.window.size.toString(16)})`);
    }
    this.next = address + size;
    return address;
  }
}
