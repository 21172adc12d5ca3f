// What a guest CPU can do to reach PCI: port I/O on 0xCF8/0xCFC
// (configuration mechanism #1, PCI 3.0 §3.2.2.3.2) and loads/stores at
// memory addresses the BARs decode. Everything goes through the PciBus the
// way KVM PIO/MMIO exits would; nothing here touches a device object.
import { PCI_CONFIG_ADDRESS_PORT, PCI_CONFIG_DATA_PORT, encodeConfigAddress } from '../pci/config-address';
import { PciBarFlags, PciHeader, PciHeaderType } from '../pci/config-header';
import type { PciBus } from '../pci/pci-bus';

export type AccessWidth = 1 | 2 | 4;

export interface PciLocation {
  readonly device: number;
  readonly function: number;
}

export interface PciCapabilityEntry {
  /** Configuration-space offset of the capability. */
  readonly offset: number;
  /** Capability ID (PCI 3.0 §6.7, e.g. 0x09 vendor-specific, 0x11 MSI-X). */
  readonly id: number;
}

const TWO_POW_32 = 0x1_0000_0000;

export class PciGuestPort {
  /** Scratch buffers per access width: an access allocates nothing (the notify write is a hot path). */
  private readonly scratch: Record<AccessWidth, Uint8Array> = { 1: new Uint8Array(1), 2: new Uint8Array(2), 4: new Uint8Array(4) };
  private readonly scratchView: Record<AccessWidth, DataView>;
  /** Accesses no one on the bus claimed (a driver bug or a moved BAR). */
  unclaimed = 0;

  constructor(readonly bus: PciBus) {
    this.scratchView = {
      1: new DataView(this.scratch[1].buffer),
      2: new DataView(this.scratch[2].buffer),
      4: new DataView(this.scratch[4].buffer),
    };
  }

  // ---- port I/O ----

  out(port: number, size: AccessWidth, value: number): void {
    this.store(size, value);
    if (!this.bus.pioWrite(port, this.scratch[size])) this.unclaimed++;
  }

  in(port: number, size: AccessWidth): number {
    const d = this.scratch[size];
    d.fill(0xff);
    if (!this.bus.pioRead(port, d)) this.unclaimed++;
    return this.load(size);
  }

  // ---- configuration mechanism #1 ----

  configRead(loc: PciLocation, offset: number, size: AccessWidth): number {
    this.out(PCI_CONFIG_ADDRESS_PORT, 4, encodeConfigAddress({ bus: 0, device: loc.device, function: loc.function, register: offset & 0xfc }));
    return this.in(PCI_CONFIG_DATA_PORT + (offset & 3), size);
  }

  configWrite(loc: PciLocation, offset: number, size: AccessWidth, value: number): void {
    this.out(PCI_CONFIG_ADDRESS_PORT, 4, encodeConfigAddress({ bus: 0, device: loc.device, function: loc.function, register: offset & 0xfc }));
    this.out(PCI_CONFIG_DATA_PORT + (offset & 3), size, value);
  }

  // ---- memory ----

  mmioRead(address: number, size: AccessWidth): number {
    const d = this.scratch[size];
    d.fill(0xff);
    if (!this.bus.mmioRead(address, d)) this.unclaimed++;
    return this.load(size);
  }

  mmioWrite(address: number, size: AccessWidth, value: number): void {
    this.store(size, value);
    if (!this.bus.mmioWrite(address, this.scratch[size])) this.unclaimed++;
  }

  // ---- enumeration, as firmware or an OS does it ----

  /** Scans bus 0 for a function with this vendor and device id (functions 1..7 only behind a multi-function function 0). */
  findFunction(vendorId: number, deviceId: number): PciLocation | undefined {
    for (let device = 0; device < 32; device++) {
      const f0 = { device, function: 0 };
      if (this.configRead(f0, PciHeader.VENDOR_ID, 2) === 0xffff) continue;
      const multi = (this.configRead(f0, PciHeader.HEADER_TYPE, 1) & PciHeaderType.MULTI_FUNCTION) !== 0;
      for (let fn = 0; fn < (multi ? 8 : 1); fn++) {
        const loc = { device, function: fn };
        if (this.configRead(loc, PciHeader.VENDOR_ID, 2) === vendorId && this.configRead(loc, PciHeader.DEVICE_ID, 2) === deviceId) return loc;
      }
    }
    return undefined;
  }

  /** Where memory BAR `index` decodes, as the BAR registers say (64-bit BARs span two registers). */
  barAddress(loc: PciLocation, index: number): number {
    const lo = this.configRead(loc, PciHeader.BAR0 + 4 * index, 4);
    if (lo & PciBarFlags.IO_SPACE) return (lo & 0xfffffffc) >>> 0;
    const base = (lo & 0xfffffff0) >>> 0;
    if ((lo & 0x6) === PciBarFlags.MEMORY_TYPE_64) return this.configRead(loc, PciHeader.BAR0 + 4 * index + 4, 4) * TWO_POW_32 + base;
    return base;
  }

  /** The capability list from the capabilities pointer (bounded, in case it loops). */
  capabilities(loc: PciLocation): PciCapabilityEntry[] {
    const out: PciCapabilityEntry[] = [];
    let at = this.configRead(loc, PciHeader.CAPABILITIES_POINTER, 1) & 0xfc;
    while (at !== 0 && out.length < 48) {
      out.push({ offset: at, id: this.configRead(loc, at, 1) });
      at = this.configRead(loc, at + 1, 1) & 0xfc;
    }
    return out;
  }

  private store(size: AccessWidth, value: number): void {
    const v = this.scratchView[size];
    if (size === 1) v.setUint8(0, value & 0xff);
    else if (size === 2) v.setUint16(0, value & 0xffff, true);
    else v.setUint32(0, value >>> 0, true);
  }

  private load(size: AccessWidth): number {
    const v = this.scratchView[size];
    return size === 1 ? v.getUint8(0) : size === 2 ? v.getUint16(0, true) : v.getUint32(0, true);
  }
}
