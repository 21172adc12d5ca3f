// Base Address Registers (PCI 3.0 §6.2.5.1): what a function declares about
// each BAR, and how the BAR register encodes it. Size probing falls out of
// the encoding: only address bits above the size are writable, so writing
// all-ones reads back ~(size - 1) | flags.
import type { AccessSize } from './access';
import { PCI_BAR_COUNT, PciBarFlags } from './config-header';

export type PciBarKind = 'memory32' | 'memory64' | 'io';

/** Accesses to a BAR's contents, offsets relative to the BAR's base. */
export interface PciBarRegion {
  read(offset: number, size: AccessSize): number;
  write(offset: number, size: AccessSize, value: number): void;
}

export interface PciBarDefinition {
  /** BAR register index 0..5; a 64-bit BAR also uses index + 1. */
  readonly index: number;
  readonly kind: PciBarKind;
  /** Bytes decoded: a power of two (memory >= 16, I/O 4..256). */
  readonly size: number;
  /** Memory BARs only: reads have no side effects, so the host may prefetch/merge. */
  readonly prefetchable?: boolean;
  readonly region: PciBarRegion;
}

const TWO_POW_32 = 0x1_0000_0000;
/** Largest BAR this model encodes (addresses stay exact as numbers). */
const MAX_MEMORY64_BAR_SIZE = 2 ** 40;

function isPowerOfTwo(n: number): boolean {
  return Number.isInteger(n) && n > 0 && 2 ** Math.round(Math.log2(n)) === n;
}

/** Checks a function's BAR set; throws naming the offending BAR (a set-up error). */
export function validateBarDefinitions(bars: readonly PciBarDefinition[]): void {
  const used = new Set<number>();
  for (const bar of bars) {
    const name = `bars[${bar.index}]`;
    const slots = bar.kind === 'memory64' ? [bar.index, bar.index + 1] : [bar.index];
    for (const s of slots) {
      if (!Number.isInteger(s) || s < 0 || s >= PCI_BAR_COUNT) throw new Error(`${name}: BAR index out of range 0..5`);
      if (used.has(s)) throw new Error(`${name}: BAR register ${s} is already used`);
      used.add(s);
    }
    if (!isPowerOfTwo(bar.size)) throw new Error(`${name}.size: ${bar.size} is not a power of two`);
    const [min, max] =
      bar.kind === 'io' ? [4, 256] : bar.kind === 'memory32' ? [16, 2 ** 31] : [16, MAX_MEMORY64_BAR_SIZE];
    if (bar.size < min || bar.size > max) throw new Error(`${name}.size: ${bar.size} outside ${min}..${max} for ${bar.kind}`);
    if (bar.kind === 'io' && bar.prefetchable) throw new Error(`${name}.prefetchable: I/O BARs cannot be prefetchable`);
  }
}

/** Read-only low bits of the BAR's (first) register. */
export function barFlags(bar: PciBarDefinition): number {
  if (bar.kind === 'io') return PciBarFlags.IO_SPACE;
  return (bar.kind === 'memory64' ? PciBarFlags.MEMORY_TYPE_64 : 0) | (bar.prefetchable ? PciBarFlags.PREFETCHABLE : 0);
}

/** Writable (address) bits of the BAR's first register. */
export function barLowAddressMask(bar: PciBarDefinition): number {
  if (bar.kind === 'io') return (~(bar.size - 1) & 0xfffffffc) >>> 0;
  if (bar.size >= TWO_POW_32) return 0;
  return (~(bar.size - 1) & 0xfffffff0) >>> 0;
}

/** Writable bits of the upper register of a 64-bit BAR. */
export function barHighAddressMask(bar: PciBarDefinition): number {
  return bar.size > TWO_POW_32 ? ~(bar.size / TWO_POW_32 - 1) >>> 0 : 0xffffffff;
}

/** The base address encoded by the BAR's register value(s). */
export function barAddressFromRegisters(bar: PciBarDefinition, low: number, high: number): number {
  if (bar.kind === 'io') return (low & 0xfffffffc) >>> 0;
  const base = (low & 0xfffffff0) >>> 0;
  return bar.kind === 'memory64' ? high * TWO_POW_32 + base : base;
}
