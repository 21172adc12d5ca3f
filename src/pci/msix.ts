// PCI 3.0 §6.8.2: the MSI-X capability, its vector table and its Pending
// Bit Array. The owner of the BAR(s) holding the table and PBA routes those
// accesses here. A vector that fires while masked (per-vector mask bit or
// the Function Mask) sets its pending bit; the message is sent once the
// vector is unmasked with MSI-X enabled (§6.8.3.5).
import {
  MSIX_MAX_VECTORS,
  MSIX_PBA_ENTRY_SIZE,
  MSIX_VECTOR_CONTROL_MASK,
  MsixCap,
  MsixControl,
  MsixTableEntry,
  PciCapabilityId,
} from 'virtio-spec-types';
import type { AccessSize } from './access';
import type { PciFunction } from './pci-function';

export interface MsixLayout {
  /** Number of table entries, 1..2048. */
  readonly vectors: number;
  readonly tableBar: number;
  /** QWORD-aligned offset of the table in its BAR. */
  readonly tableOffset: number;
  readonly pbaBar: number;
  /** QWORD-aligned offset of the PBA in its BAR. */
  readonly pbaOffset: number;
}

/** Observers of MSI-X state, e.g. a VMM keeping irqfd routes in step with the table. */
export interface MsixListener {
  /** MSI-X Enable or Function Mask changed. */
  controlChanged?(): void;
  /** A vector's address, data or mask bit changed. */
  vectorChanged?(vector: number): void;
}

export interface MsixMessage {
  readonly address: number;
  readonly data: number;
  readonly masked: boolean;
}

const DWORDS_PER_ENTRY = MsixTableEntry.SIZE / 4;
/** Message address high DWORDs from here up address >= 2^52: no x86 host can reach it. */
const UNREACHABLE_ADDRESS_HIGH = 2 ** 20;

export function msixTableSize(vectors: number): number {
  return vectors * MsixTableEntry.SIZE;
}

export function msixPbaSize(vectors: number): number {
  return Math.ceil(vectors / 64) * MSIX_PBA_ENTRY_SIZE;
}

export class MsixCapability {
  readonly vectors: number;
  /** Offset of the capability in configuration space. */
  readonly capOffset: number;
  /** Per vector: address low, address high, data, vector control. */
  private readonly table: Uint32Array;
  /** Pending bits, 32 vectors per element (the PBA as DWORDs). */
  private readonly pending: Uint32Array;
  private readonly listeners: MsixListener[] = [];
  private lastControl = 0;

  constructor(
    private readonly fn: PciFunction,
    readonly layout: MsixLayout,
  ) {
    const { vectors, tableBar, tableOffset, pbaBar, pbaOffset } = layout;
    if (!Number.isInteger(vectors) || vectors < 1 || vectors > MSIX_MAX_VECTORS) {
      throw new Error(`msix.vectors: ${vectors} is not 1..${MSIX_MAX_VECTORS}`);
    }
    for (const [name, bar, offset, size] of [
      ['table', tableBar, tableOffset, msixTableSize(vectors)],
      ['pba', pbaBar, pbaOffset, msixPbaSize(vectors)],
    ] as const) {
      const def = fn.barDefinition(bar);
      if (!def || def.kind === 'io') throw new Error(`msix.${name}Bar: BAR ${bar} is not a memory BAR of this function`);
      if (offset % 8 !== 0 || offset + size > def.size) throw new Error(`msix.${name}Offset: 0x${offset.toString(16)} misaligned or beyond BAR ${bar}`);
    }
    this.vectors = vectors;
    this.table = new Uint32Array(vectors * DWORDS_PER_ENTRY);
    // §6.8.2.9: every vector is masked after reset.
    for (let v = 0; v < vectors; v++) this.table[v * DWORDS_PER_ENTRY + 3] = MSIX_VECTOR_CONTROL_MASK;
    this.pending = new Uint32Array(msixPbaSize(vectors) / 4);

    this.capOffset = fn.capabilities.add(PciCapabilityId.MSIX, MsixCap.SIZE, {
      afterWrite: () => this.controlWritten(),
    });
    const c = fn.config;
    c.set16(this.capOffset + MsixCap.MESSAGE_CONTROL, (vectors - 1) & MsixControl.TABLE_SIZE_MASK);
    c.setWritable(this.capOffset + MsixCap.MESSAGE_CONTROL, 2, MsixControl.ENABLE | MsixControl.FUNCTION_MASK);
    c.set32(this.capOffset + MsixCap.TABLE, (tableOffset | tableBar) >>> 0);
    c.set32(this.capOffset + MsixCap.PBA, (pbaOffset | pbaBar) >>> 0);
  }

  addListener(listener: MsixListener): void {
    this.listeners.push(listener);
  }

  private get control(): number {
    return this.fn.config.get16(this.capOffset + MsixCap.MESSAGE_CONTROL);
  }

  get enabled(): boolean {
    return (this.control & MsixControl.ENABLE) !== 0;
  }

  get functionMasked(): boolean {
    return (this.control & MsixControl.FUNCTION_MASK) !== 0;
  }

  isVectorMasked(vector: number): boolean {
    return ((this.table[vector * DWORDS_PER_ENTRY + 3] ?? MSIX_VECTOR_CONTROL_MASK) & MSIX_VECTOR_CONTROL_MASK) !== 0;
  }

  isPending(vector: number): boolean {
    return ((this.pending[vector >>> 5] ?? 0) & (1 << (vector & 31))) !== 0;
  }

  /** The message a vector would send, for routing set-up; undefined if out of range. */
  message(vector: number): MsixMessage | undefined {
    if (!Number.isInteger(vector) || vector < 0 || vector >= this.vectors) return undefined;
    const e = vector * DWORDS_PER_ENTRY;
    return {
      address: (this.table[e + 1] ?? 0) * 0x1_0000_0000 + (this.table[e] ?? 0),
      data: this.table[e + 2] ?? 0,
      masked: this.isVectorMasked(vector),
    };
  }

  /**
   * The function wants to interrupt through `vector`. Returns whether a
   * message went out; false when MSI-X is disabled, the vector is out of
   * range, or it is masked (then its pending bit is set instead).
   */
  trigger(vector: number): boolean {
    if (!this.enabled || !Number.isInteger(vector) || vector < 0 || vector >= this.vectors) return false;
    if (this.functionMasked || this.isVectorMasked(vector)) {
      this.pending[vector >>> 5] = (this.pending[vector >>> 5] ?? 0) | (1 << (vector & 31));
      return false;
    }
    this.send(vector);
    return true;
  }

  private send(vector: number): void {
    const e = vector * DWORDS_PER_ENTRY;
    const high = this.table[e + 1] ?? 0;
    if (high >= UNREACHABLE_ADDRESS_HIGH) return; // a write beyond any physical address lands nowhere
    this.fn.sendMsi(high * 0x1_0000_0000 + (this.table[e] ?? 0), this.table[e + 2] ?? 0);
  }

  private clearPending(vector: number): void {
    this.pending[vector >>> 5] = (this.pending[vector >>> 5] ?? 0) & ~(1 << (vector & 31));
  }

  /** Sends every pending vector that is no longer masked. */
  private deliverPending(): void {
    if (!this.enabled || this.functionMasked) return;
    for (let word = 0; word < this.pending.length; word++) {
      if (this.pending[word] === 0) continue;
      for (let bit = 0; bit < 32; bit++) {
        const v = word * 32 + bit;
        if (v < this.vectors && this.isPending(v) && !this.isVectorMasked(v)) {
          this.clearPending(v);
          this.send(v);
        }
      }
    }
  }

  private controlWritten(): void {
    const control = this.control;
    if (control === this.lastControl) return;
    this.lastControl = control;
    this.deliverPending();
    for (const l of this.listeners) l.controlChanged?.();
  }

  // ---- table and PBA accesses (offsets relative to their start) ----
  // §6.8.2: software uses aligned DWORD or QWORD accesses; QWORDs reach us as
  // two DWORDs (PciFunction.barRead). Anything else reads 0 / is ignored.

  readTable(offset: number, size: AccessSize): number {
    if (size !== 4 || offset % 4 !== 0 || offset < 0 || offset >= this.table.length * 4) return 0;
    return this.table[offset / 4] ?? 0;
  }

  writeTable(offset: number, size: AccessSize, value: number): void {
    if (size !== 4 || offset % 4 !== 0 || offset < 0 || offset >= this.table.length * 4) return;
    const index = offset / 4;
    const vector = Math.floor(index / DWORDS_PER_ENTRY);
    let v = value >>> 0;
    switch (index % DWORDS_PER_ENTRY) {
      case 0:
        v = (v & ~3) >>> 0; // §6.8.2.6: address bits 1:0 are DWORD alignment, read as 0
        break;
      case 3:
        v &= MSIX_VECTOR_CONTROL_MASK; // bits 31:1 reserved
        break;
      default:
        break;
    }
    if (this.table[index] === v) return;
    this.table[index] = v;
    if (index % DWORDS_PER_ENTRY === 3 && (v & MSIX_VECTOR_CONTROL_MASK) === 0 && this.isPending(vector)) {
      if (this.enabled && !this.functionMasked) {
        this.clearPending(vector);
        this.send(vector);
      }
    }
    for (const l of this.listeners) l.vectorChanged?.(vector);
  }

  readPba(offset: number, size: AccessSize): number {
    if (size !== 4 || offset % 4 !== 0 || offset < 0 || offset >= this.pending.length * 4) return 0;
    return this.pending[offset / 4] ?? 0;
  }

  /** §6.8.2.10: pending bits are read-only to software. */
  writePba(): void {}
}
