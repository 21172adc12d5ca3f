// One PCI function as the guest sees it: a type-0 configuration header with
// per-bit write masks, BAR registers with size probing, a capability list,
// and the function's INTx pin. Devices compose it: they hand in their BARs'
// region handlers and add capabilities; the bus routes configuration
// cycles, BAR accesses and interrupts through it.
import { type AccessSize, isAccessSize, loadLe, mergeDword, storeLe } from './access';
import {
  type PciBarDefinition,
  barAddressFromRegisters,
  barFlags,
  barHighAddressMask,
  barLowAddressMask,
  validateBarDefinitions,
} from './bar';
import { PciCapabilityList } from './capability-list';
import {
  PCI_BAR_COUNT,
  PCI_INTERRUPT_LINE_UNKNOWN,
  PCI_STATUS_WRITE_ONE_TO_CLEAR,
  PciCommand,
  PciHeader,
  PciHeaderType,
  PciInterruptPin,
  PciStatus,
} from './config-header';
import { PciConfigSpace } from './config-space';
import { DISCONNECTED_INTERRUPTS, type InterruptSink } from './interrupt-sink';

export interface PciClassCode {
  readonly base: number;
  readonly sub: number;
  readonly progIf?: number;
}

export interface PciFunctionIdentity {
  readonly vendorId: number;
  readonly deviceId: number;
  readonly revisionId?: number;
  readonly classCode: PciClassCode;
  readonly subsystemVendorId?: number;
  readonly subsystemId?: number;
  /** PciInterruptPin: NONE (default) or INTA..INTD. */
  readonly interruptPin?: number;
}

/** Addresses >= 2^52 are beyond any x86 MAXPHYADDR: a BAR there decodes nothing. */
const MAX_PHYSICAL_ADDRESS = 2 ** 52;
const IO_SPACE_END = 0x10000;

export class PciFunction {
  readonly config = new PciConfigSpace();
  readonly capabilities = new PciCapabilityList(this.config);
  /** BAR definitions by their (first) register index. */
  private readonly bars: (PciBarDefinition | undefined)[] = new Array<PciBarDefinition | undefined>(PCI_BAR_COUNT).fill(undefined);
  /** For each BAR register, the BAR it belongs to and whether it is the upper half of a 64-bit BAR. */
  private readonly barOfRegister: ({ bar: PciBarDefinition; upper: boolean } | undefined)[] = new Array<
    { bar: PciBarDefinition; upper: boolean } | undefined
  >(PCI_BAR_COUNT).fill(undefined);
  private sink: InterruptSink = DISCONNECTED_INTERRUPTS;
  private intxAsserted = false;
  private intxPinLevel = false;
  /**
   * Set by the bus: called after a guest write that may have moved a BAR or
   * changed the command register's decode enables.
   */
  decodeChanged: (() => void) | undefined;

  constructor(identity: PciFunctionIdentity, bars: readonly PciBarDefinition[] = []) {
    validateBarDefinitions(bars);
    const c = this.config;
    c.set16(PciHeader.VENDOR_ID, identity.vendorId);
    c.set16(PciHeader.DEVICE_ID, identity.deviceId);
    c.set8(PciHeader.REVISION_ID, identity.revisionId ?? 0);
    c.set8(PciHeader.PROG_IF, identity.classCode.progIf ?? 0);
    c.set8(PciHeader.SUBCLASS, identity.classCode.sub);
    c.set8(PciHeader.CLASS, identity.classCode.base);
    c.set8(PciHeader.HEADER_TYPE, PciHeaderType.TYPE0);
    c.set16(PciHeader.SUBSYSTEM_VENDOR_ID, identity.subsystemVendorId ?? 0);
    c.set16(PciHeader.SUBSYSTEM_ID, identity.subsystemId ?? 0);
    const pin = identity.interruptPin ?? PciInterruptPin.NONE;
    if (!Number.isInteger(pin) || pin < 0 || pin > 4) throw new Error(`interruptPin: ${pin} is not 0..4`);
    c.set8(PciHeader.INTERRUPT_PIN, pin);
    c.set8(PciHeader.INTERRUPT_LINE, PCI_INTERRUPT_LINE_UNKNOWN);

    for (const bar of bars) {
      this.bars[bar.index] = bar;
      this.barOfRegister[bar.index] = { bar, upper: false };
      if (bar.kind === 'memory64') this.barOfRegister[bar.index + 1] = { bar, upper: true };
      c.set32(PciHeader.BAR0 + 4 * bar.index, barFlags(bar));
    }

    // §6.2.2: enables for resources the function does not have are hardwired to 0.
    const hasIo = bars.some((b) => b.kind === 'io');
    const hasMemory = bars.some((b) => b.kind !== 'io');
    c.setWritable(
      PciHeader.COMMAND,
      2,
      (hasIo ? PciCommand.IO_SPACE : 0) |
        (hasMemory ? PciCommand.MEMORY_SPACE : 0) |
        PciCommand.BUS_MASTER |
        PciCommand.PARITY_ERROR_RESPONSE |
        PciCommand.SERR_ENABLE |
        (pin !== PciInterruptPin.NONE ? PciCommand.INTERRUPT_DISABLE : 0),
    );
    c.setWriteOneToClear(PciHeader.STATUS, 2, PCI_STATUS_WRITE_ONE_TO_CLEAR);
    c.setWritable(PciHeader.CACHE_LINE_SIZE, 1, 0xff);
    c.setWritable(PciHeader.INTERRUPT_LINE, 1, 0xff);
  }

  // ---- configuration space, as the guest accesses it ----

  configRead(offset: number, size: number): number {
    if (!PciConfigSpace.isValidAccess(offset, size)) return 0;
    const cap = this.capabilities.find(offset);
    cap?.hooks.beforeRead?.(offset - cap.offset, size);
    return this.config.read(offset, size);
  }

  configWrite(offset: number, size: number, value: number): void {
    if (!PciConfigSpace.isValidAccess(offset, size)) return;
    const dword = offset & ~3;
    if (dword >= PciHeader.BAR0 && dword < PciHeader.BAR0 + 4 * PCI_BAR_COUNT) {
      this.writeBarRegister((dword - PciHeader.BAR0) >> 2, offset & 3, size, value);
      return;
    }
    const oldCommand = this.config.get16(PciHeader.COMMAND);
    this.config.write(offset, size, value);
    if (dword === PciHeader.COMMAND) this.commandWritten(oldCommand);
    const cap = this.capabilities.find(offset);
    cap?.hooks.afterWrite?.(offset - cap.offset, size);
  }

  private writeBarRegister(register: number, lane: number, size: AccessSize, value: number): void {
    const owner = this.barOfRegister[register];
    if (!owner) return; // unimplemented BAR: hardwired to 0
    const at = PciHeader.BAR0 + 4 * register;
    const merged = mergeDword(this.config.get32(at), lane, size, value);
    const stored = owner.upper
      ? merged & barHighAddressMask(owner.bar)
      : (merged & barLowAddressMask(owner.bar)) | barFlags(owner.bar);
    this.config.set32(at, stored >>> 0);
    this.decodeChanged?.();
  }

  private commandWritten(oldCommand: number): void {
    const changed = oldCommand ^ this.config.get16(PciHeader.COMMAND);
    if (changed & (PciCommand.IO_SPACE | PciCommand.MEMORY_SPACE)) this.decodeChanged?.();
    if (changed & PciCommand.INTERRUPT_DISABLE) this.updateIntxPin();
  }

  // ---- BARs ----

  get barDefinitions(): readonly PciBarDefinition[] {
    return this.bars.filter((b): b is PciBarDefinition => b !== undefined);
  }

  barDefinition(index: number): PciBarDefinition | undefined {
    return this.bars[index];
  }

  /** The base address currently programmed into a BAR, whether or not it decodes. */
  barAddress(index: number): number | undefined {
    const bar = this.bars[index];
    if (!bar) return undefined;
    const low = this.config.get32(PciHeader.BAR0 + 4 * index);
    const high = bar.kind === 'memory64' ? this.config.get32(PciHeader.BAR0 + 4 * (index + 1)) : 0;
    return barAddressFromRegisters(bar, low, high);
  }

  /**
   * Where the BAR decodes now: its address when the command register enables
   * its space and the whole BAR lies in that space; undefined otherwise.
   */
  barDecodeAddress(index: number): number | undefined {
    const bar = this.bars[index];
    const address = this.barAddress(index);
    if (!bar || address === undefined) return undefined;
    const command = this.config.get16(PciHeader.COMMAND);
    if (bar.kind === 'io') {
      return command & PciCommand.IO_SPACE && address + bar.size <= IO_SPACE_END ? address : undefined;
    }
    return command & PciCommand.MEMORY_SPACE && address + bar.size <= MAX_PHYSICAL_ADDRESS ? address : undefined;
  }

  /** Firmware-side BAR programming (the bus placing BARs); `address` must be size-aligned. */
  setBarAddress(index: number, address: number): void {
    const bar = this.bars[index];
    if (!bar) throw new Error(`BAR ${index} is not implemented`);
    if (!Number.isInteger(address) || address < 0 || address % bar.size !== 0) {
      throw new Error(`BAR ${index}: address 0x${address.toString(16)} is not aligned to its size 0x${bar.size.toString(16)}`);
    }
    const limit = bar.kind === 'io' ? IO_SPACE_END : bar.kind === 'memory32' ? 0x1_0000_0000 : MAX_PHYSICAL_ADDRESS;
    if (address + bar.size > limit) throw new Error(`BAR ${index}: address 0x${address.toString(16)} beyond its address space`);
    this.config.set32(PciHeader.BAR0 + 4 * index, ((address % 0x1_0000_0000) | barFlags(bar)) >>> 0);
    if (bar.kind === 'memory64') this.config.set32(PciHeader.BAR0 + 4 * (index + 1), Math.floor(address / 0x1_0000_0000));
    this.decodeChanged?.();
  }

  /** Firmware-side: turn on I/O and memory decoding for the spaces the function has. */
  enableDecoding(): void {
    const bars = this.barDefinitions;
    const bits =
      (bars.some((b) => b.kind === 'io') ? PciCommand.IO_SPACE : 0) |
      (bars.some((b) => b.kind !== 'io') ? PciCommand.MEMORY_SPACE : 0);
    this.config.set16(PciHeader.COMMAND, this.config.get16(PciHeader.COMMAND) | bits);
    this.decodeChanged?.();
  }

  /**
   * A read of `data.length` bytes at `offset` in BAR `index`, bypassing
   * decode (the bus has already decoded; the virtio PCI_CFG window uses this
   * directly). 8-byte accesses are two DWORD accesses, low half first;
   * other odd sizes and out-of-range accesses read 0.
   */
  barRead(index: number, offset: number, data: Uint8Array): void {
    const bar = this.bars[index];
    const len = data.length;
    if (!bar || offset < 0 || offset + len > bar.size) {
      data.fill(0);
    } else if (isAccessSize(len)) {
      storeLe(data, bar.region.read(offset, len));
    } else if (len === 8) {
      storeLe(data, bar.region.read(offset, 4), 0, 4);
      storeLe(data, bar.region.read(offset + 4, 4), 4, 4);
    } else {
      data.fill(0);
    }
  }

  /** A write of `data` at `offset` in BAR `index`; see barRead for widths. */
  barWrite(index: number, offset: number, data: Uint8Array): void {
    const bar = this.bars[index];
    const len = data.length;
    if (!bar || offset < 0 || offset + len > bar.size) return;
    if (isAccessSize(len)) {
      bar.region.write(offset, len, loadLe(data));
    } else if (len === 8) {
      bar.region.write(offset, 4, loadLe(data, 0, 4));
      bar.region.write(offset + 4, 4, loadLe(data, 4, 4));
    }
  }

  // ---- interrupts ----

  /** The bus connects the function's interrupts when it is added. */
  connectInterrupts(sink: InterruptSink): void {
    this.sink = sink;
    this.intxPinLevel = false;
    this.updateIntxPin();
  }

  /**
   * The function's internal interrupt condition for INTx. Mirrors it in the
   * status register's Interrupt Status bit and drives the pin unless the
   * command register's Interrupt Disable bit masks it (§6.2.2, §6.2.3).
   */
  setIntx(asserted: boolean): void {
    if (this.config.get8(PciHeader.INTERRUPT_PIN) === PciInterruptPin.NONE) return;
    this.intxAsserted = asserted;
    const status = this.config.get16(PciHeader.STATUS);
    this.config.set16(PciHeader.STATUS, asserted ? status | PciStatus.INTERRUPT : status & ~PciStatus.INTERRUPT);
    this.updateIntxPin();
  }

  get intxLevel(): boolean {
    return this.intxPinLevel;
  }

  private updateIntxPin(): void {
    const level = this.intxAsserted && (this.config.get16(PciHeader.COMMAND) & PciCommand.INTERRUPT_DISABLE) === 0;
    if (level === this.intxPinLevel) return;
    this.intxPinLevel = level;
    this.sink.intx(level);
  }

  /** Sends an MSI/MSI-X message (a memory write by the function). */
  sendMsi(address: number, data: number): void {
    this.sink.msi(address, data);
  }

  /** Marks the function as one of several in its slot (header type bit 7). */
  setMultiFunction(on: boolean): void {
    const t = this.config.get8(PciHeader.HEADER_TYPE);
    this.config.set8(PciHeader.HEADER_TYPE, on ? t | PciHeaderType.MULTI_FUNCTION : t & ~PciHeaderType.MULTI_FUNCTION);
  }
}
