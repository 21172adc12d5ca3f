// PCI bus 0 behind a host bridge: configuration mechanism #1 on ports
// 0xCF8/0xCFC, up to 32 devices x 8 functions, BAR placement in the windows
// the VMM reserves, and routing of PIO/MMIO exits to the BAR that decodes
// them. Accesses use the byte buffers of KVM exits: `data.length` is the
// access width and reads fill `data` little-endian.
import { type AccessSize, allOnes, isAccessSize, loadLe, storeLe } from './access';
import type { PciBarKind } from './bar';
import {
  PCI_CONFIG_ADDRESS_MASK,
  PCI_CONFIG_ADDRESS_PORT,
  PCI_CONFIG_DATA_PORT,
  decodeConfigAddress,
} from './config-address';
import { PCI_BAR_COUNT, PciHeader } from './config-header';
import { createHostBridge } from './host-bridge';
import { DISCONNECTED_INTERRUPTS, type InterruptSink } from './interrupt-sink';
import type { PciFunction } from './pci-function';
import { type PciWindow, WindowAllocator } from './window-allocator';

export type { PciWindow } from './window-allocator';

export interface PciBusOptions {
  /** Guest-physical window below 4 GiB for 32-bit memory BARs (and 64-bit ones without `mmio64`). */
  readonly mmio32: PciWindow;
  /** Optional window above RAM for 64-bit memory BARs. */
  readonly mmio64?: PciWindow;
  /** Optional I/O port window for I/O BARs. */
  readonly io?: PciWindow;
  /** Put a host bridge at 00:00.0 (default true). */
  readonly hostBridge?: boolean;
}

export interface PciAttachOptions {
  /** Where the function's MSIs and INTx level go. */
  readonly interrupts?: InterruptSink;
  /** Device number 0..31; default: the lowest free slot. */
  readonly device?: number;
  /** Function number 0..7 (default 0); function 0 of the slot must exist first. */
  readonly function?: number;
  /** Interrupt Line register value, as firmware would program it (the GSI of the INTx pin). */
  readonly interruptLine?: number;
}

export interface PciAddress {
  readonly bus: number;
  readonly device: number;
  readonly function: number;
}

/** A BAR started or stopped decoding at an address (e.g. to move ioeventfds). */
export interface BarMapEvent {
  readonly fn: PciFunction;
  readonly address: PciAddress;
  readonly bar: number;
  readonly kind: PciBarKind;
  readonly size: number;
  readonly previous: number | undefined;
  readonly current: number | undefined;
}

export type BarMapListener = (event: BarMapEvent) => void;

interface Slot {
  readonly fn: PciFunction;
  readonly address: PciAddress;
  /** Per BAR index, where it decodes now. */
  readonly decoded: (number | undefined)[];
}

interface DecodedRange {
  readonly start: number;
  readonly end: number;
  readonly fn: PciFunction;
  readonly bar: number;
}

const FUNCTIONS_PER_BUS = 32 * 8;
/** Memory BARs are placed on page boundaries so no two functions share a page. */
const MIN_MEMORY_ALIGNMENT = 4096;

export class PciBus {
  private readonly slots: (Slot | undefined)[] = new Array<Slot | undefined>(FUNCTIONS_PER_BUS).fill(undefined);
  private readonly mmio32: WindowAllocator;
  private readonly mmio64: WindowAllocator | undefined;
  private readonly io: WindowAllocator | undefined;
  private mmioRanges: DecodedRange[] = [];
  private ioRanges: DecodedRange[] = [];
  private readonly listeners: BarMapListener[] = [];
  private configAddress = 0;

  constructor(options: PciBusOptions) {
    this.mmio32 = new WindowAllocator('pci.mmio32', options.mmio32);
    if (options.mmio32.base + options.mmio32.size > 0x1_0000_0000) throw new Error('pci.mmio32: window must end below 4 GiB');
    this.mmio64 = options.mmio64 ? new WindowAllocator('pci.mmio64', options.mmio64) : undefined;
    this.io = options.io ? new WindowAllocator('pci.io', options.io) : undefined;
    if (options.io && options.io.base + options.io.size > 0x10000) throw new Error('pci.io: window must end below 0x10000');
    if (options.hostBridge ?? true) this.add(createHostBridge(), { device: 0 });
  }

  onBarMap(listener: BarMapListener): void {
    this.listeners.push(listener);
  }

  /**
   * Attaches a function: places its BARs in the windows, enables decoding
   * and connects its interrupts, as firmware would before the OS boots.
   */
  add(fn: PciFunction, options: PciAttachOptions = {}): PciAddress {
    const fnNumber = options.function ?? 0;
    const device = options.device ?? this.freeDevice();
    if (!Number.isInteger(device) || device < 0 || device > 31) throw new Error(`pci device: ${device} is not 0..31`);
    if (!Number.isInteger(fnNumber) || fnNumber < 0 || fnNumber > 7) throw new Error(`pci function: ${fnNumber} is not 0..7`);
    const index = device * 8 + fnNumber;
    if (this.slots[index]) throw new Error(`pci device ${device} function ${fnNumber}: already in use`);
    if (this.slots.some((s) => s?.fn === fn)) throw new Error('pci: function is already attached');
    const function0 = this.slots[device * 8];
    if (fnNumber !== 0 && !function0) throw new Error(`pci device ${device} function ${fnNumber}: function 0 must be added first`);

    const address: PciAddress = { bus: 0, device, function: fnNumber };
    const slot: Slot = { fn, address, decoded: new Array<number | undefined>(PCI_BAR_COUNT).fill(undefined) };
    this.slots[index] = slot;
    if (fnNumber !== 0) function0?.fn.setMultiFunction(true);
    if (options.interruptLine !== undefined) fn.config.set8(PciHeader.INTERRUPT_LINE, options.interruptLine);

    // Largest first keeps the bump allocator's alignment gaps small.
    const bars = [...fn.barDefinitions].sort((a, b) => b.size - a.size);
    for (const bar of bars) {
      const allocator =
        bar.kind === 'io'
          ? this.io
          : bar.kind === 'memory64' && this.mmio64
            ? this.mmio64
            : this.mmio32;
      if (!allocator) throw new Error(`pci.io: BAR ${bar.index} of device ${device} needs an I/O window`);
      const alignment = bar.kind === 'io' ? bar.size : Math.max(bar.size, MIN_MEMORY_ALIGNMENT);
      fn.setBarAddress(bar.index, allocator.allocate(bar.size, alignment));
    }
    fn.decodeChanged = () => this.refresh(slot);
    fn.enableDecoding();
    fn.connectInterrupts(options.interrupts ?? DISCONNECTED_INTERRUPTS);
    this.refresh(slot);
    return address;
  }

  private freeDevice(): number {
    for (let d = 0; d < 32; d++) if (!this.slots[d * 8]) return d;
    throw new Error('pci: all 32 device slots are in use');
  }

  /** Where BAR `bar` of `fn` decodes now, if it does. */
  barAddress(fn: PciFunction, bar: number): number | undefined {
    return this.slots.find((s) => s?.fn === fn)?.decoded[bar];
  }

  /** Recomputes where a function's BARs decode; reports moves to listeners. */
  private refresh(slot: Slot): void {
    let changed = false;
    for (const bar of slot.fn.barDefinitions) {
      const previous = slot.decoded[bar.index];
      const current = slot.fn.barDecodeAddress(bar.index);
      if (previous === current) continue;
      slot.decoded[bar.index] = current;
      changed = true;
      for (const l of this.listeners) {
        l({ fn: slot.fn, address: slot.address, bar: bar.index, kind: bar.kind, size: bar.size, previous, current });
      }
    }
    if (changed) this.rebuildRanges();
  }

  private rebuildRanges(): void {
    const mmio: DecodedRange[] = [];
    const io: DecodedRange[] = [];
    for (const slot of this.slots) {
      if (!slot) continue;
      for (const bar of slot.fn.barDefinitions) {
        const start = slot.decoded[bar.index];
        if (start === undefined) continue;
        (bar.kind === 'io' ? io : mmio).push({ start, end: start + bar.size, fn: slot.fn, bar: bar.index });
      }
    }
    this.mmioRanges = mmio;
    this.ioRanges = io;
  }

  // ---- configuration cycles ----

  /** A configuration read of bus 0; absent functions read all-ones (master abort). */
  configRead(device: number, fn: number, offset: number, size: AccessSize): number {
    const slot = this.slots[device * 8 + fn];
    return slot ? slot.fn.configRead(offset, size) : allOnes(size);
  }

  configWrite(device: number, fn: number, offset: number, size: AccessSize, value: number): void {
    this.slots[device * 8 + fn]?.fn.configWrite(offset, size, value);
  }

  // ---- port I/O exits ----

  /**
   * A guest IN. Returns false when no one on this bus claims the port (the
   * VMM then tries its other devices); 0xCF8 is only claimed for DWORD
   * accesses, so byte accesses to 0xCF9 (reset control) stay with the VMM.
   */
  pioRead(port: number, data: Uint8Array): boolean {
    const size = data.length;
    if (port === PCI_CONFIG_ADDRESS_PORT && size === 4) {
      storeLe(data, this.configAddress);
      return true;
    }
    if (port >= PCI_CONFIG_DATA_PORT && port < PCI_CONFIG_DATA_PORT + 4) {
      const lane = port - PCI_CONFIG_DATA_PORT;
      if (!isAccessSize(size) || lane + size > 4) {
        data.fill(0xff);
        return true;
      }
      const target = decodeConfigAddress(this.configAddress);
      const value = target && target.bus === 0 ? this.configRead(target.device, target.function, target.register + lane, size) : allOnes(size);
      storeLe(data, value);
      return true;
    }
    const range = this.find(this.ioRanges, port);
    if (!range) return false;
    range.fn.barRead(range.bar, port - range.start, data);
    return true;
  }

  /** A guest OUT; see pioRead for what is claimed. */
  pioWrite(port: number, data: Uint8Array): boolean {
    const size = data.length;
    if (port === PCI_CONFIG_ADDRESS_PORT && size === 4) {
      this.configAddress = (loadLe(data) & PCI_CONFIG_ADDRESS_MASK) >>> 0;
      return true;
    }
    if (port >= PCI_CONFIG_DATA_PORT && port < PCI_CONFIG_DATA_PORT + 4) {
      const lane = port - PCI_CONFIG_DATA_PORT;
      const target = decodeConfigAddress(this.configAddress);
      if (isAccessSize(size) && lane + size <= 4 && target && target.bus === 0) {
        this.configWrite(target.device, target.function, target.register + lane, size, loadLe(data));
      }
      return true;
    }
    const range = this.find(this.ioRanges, port);
    if (!range) return false;
    range.fn.barWrite(range.bar, port - range.start, data);
    return true;
  }

  // ---- MMIO exits ----

  /** A guest load from `address`; false when no BAR decodes it. */
  mmioRead(address: number, data: Uint8Array): boolean {
    const range = this.find(this.mmioRanges, address);
    if (!range) return false;
    range.fn.barRead(range.bar, address - range.start, data);
    return true;
  }

  /** A guest store to `address`; false when no BAR decodes it. */
  mmioWrite(address: number, data: Uint8Array): boolean {
    const range = this.find(this.mmioRanges, address);
    if (!range) return false;
    range.fn.barWrite(range.bar, address - range.start, data);
    return true;
  }

  /**
   * The BAR whose range holds the first byte; an access running past its end
   * is still claimed (the function ignores the out-of-range part).
   */
  private find(ranges: readonly DecodedRange[], address: number): DecodedRange | undefined {
    for (const r of ranges) if (address >= r.start && address < r.end) return r;
    return undefined;
  }
}
