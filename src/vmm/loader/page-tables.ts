// x86-64 4-level identity page tables (Intel SDM vol. 3A §4.5, "4-level
// paging"), built in guest memory by the VMM before the first instruction
// runs, and a walker that reads them back (tests, fault reports).
//
// The caller lists what to map as 4 KiB-aligned ranges with attributes;
// each 2 MiB region wholly covered by one range becomes one 2 MiB page
// (PDE.PS), anything else gets a page table of 4 KiB entries, so holes
// (page 0, guard pages) and supervisor-only pages can sit next to user
// memory. Physical addresses stay below 2^47 (canonical lower half).
// Shared by the bare-metal loader and the Linux loader.
import { hex } from '../../hex';

/** Page-table entry bits (SDM vol. 3A Table 4-15 .. 4-20). */
export const enum Pte {
  Present = 1 << 0,
  Writable = 1 << 1,
  User = 1 << 2,
  WriteThrough = 1 << 3,
  CacheDisable = 1 << 4,
  Accessed = 1 << 5,
  Dirty = 1 << 6,
  /** PDE/PDPTE: maps a 2 MiB / 1 GiB page instead of pointing at a table. */
  PageSize = 1 << 7,
  Global = 1 << 8,
}

export const PAGE_SIZE = 0x1000;
export const LARGE_PAGE_SIZE = 0x20_0000;
export const HUGE_PAGE_SIZE = 0x4000_0000;
/** Identity maps end below the canonical boundary. */
export const MAX_PHYSICAL = 2 ** 47;
const ENTRIES = 512;
/** Bits 51:12 of an entry (a number: the address bits fit a double exactly). */
const ADDRESS_MASK_HI = 0x000f_ffff;

export interface MapRange {
  /** First byte (4 KiB aligned); virtual = physical. */
  base: number;
  /** Bytes (a multiple of 4 KiB, > 0). */
  size: number;
  /** U/S = 1: ring 3 may access it. */
  user: boolean;
  /** R/W = 1. */
  writable: boolean;
  /** PCD | PWT: device memory (MMIO) must not be cached. */
  uncached?: boolean;
}

export class PageTableError extends Error {
  override name = 'PageTableError';
}

function leafFlags(r: MapRange): number {
  let f = Pte.Present | Pte.Accessed | Pte.Dirty;
  if (r.writable) f |= Pte.Writable;
  if (r.user) f |= Pte.User;
  if (r.uncached) f |= Pte.CacheDisable | Pte.WriteThrough;
  return f;
}

/** Non-leaf entries allow everything; the leaf decides (SDM §4.6: rights are the AND over the walk). */
const TABLE_FLAGS = Pte.Present | Pte.Writable | Pte.User | Pte.Accessed;

interface Piece {
  start: number;
  end: number;
  flags: number;
}

interface Plan {
  /** 2 MiB region number -> leaf flags of one 2 MiB page, or the 4 KiB pieces inside it. */
  regions: Map<number, number | Piece[]>;
  /** Table pages needed: PML4 + PDPTs + PDs + PTs. */
  tablePages: number;
}

function checkRanges(ranges: readonly MapRange[]): MapRange[] {
  const sorted = [...ranges].sort((a, b) => a.base - b.base);
  for (const r of sorted) {
    if (!Number.isSafeInteger(r.base) || !Number.isSafeInteger(r.size) || r.base < 0 || r.size <= 0) {
      throw new PageTableError(`map range base ${hex(r.base)} size ${hex(r.size)} is not a valid range`);
    }
    if (r.base % PAGE_SIZE !== 0 || r.size % PAGE_SIZE !== 0) {
      throw new PageTableError(`map range [${hex(r.base)}, +${hex(r.size)}) is not 4 KiB aligned`);
    }
    if (r.base + r.size > MAX_PHYSICAL) throw new PageTableError(`map range [${hex(r.base)}, +${hex(r.size)}) ends above 2^47`);
  }
  for (let i = 1; i < sorted.length; i++) {
    const a = sorted[i - 1]!;
    const b = sorted[i]!;
    if (b.base < a.base + a.size) {
      throw new PageTableError(`map ranges [${hex(a.base)}, ${hex(a.base + a.size)}) and [${hex(b.base)}, ${hex(b.base + b.size)}) overlap`);
    }
  }
  return sorted;
}

function plan(ranges: readonly MapRange[]): Plan {
  const regions = new Map<number, number | Piece[]>();
  for (const r of checkRanges(ranges)) {
    const flags = leafFlags(r);
    const end = r.base + r.size;
    for (let at = r.base; at < end; ) {
      const region = Math.floor(at / LARGE_PAGE_SIZE);
      const regionEnd = (region + 1) * LARGE_PAGE_SIZE;
      const pieceEnd = Math.min(end, regionEnd);
      const whole = at === region * LARGE_PAGE_SIZE && pieceEnd === regionEnd;
      if (whole) regions.set(region, flags);
      else {
        const list = regions.get(region);
        const piece = { start: at, end: pieceEnd, flags };
        if (Array.isArray(list)) list.push(piece);
        else regions.set(region, [piece]);
      }
      at = pieceEnd;
    }
  }
  const pdpts = new Set<number>();
  const pds = new Set<number>();
  let pts = 0;
  for (const [region, v] of regions) {
    pdpts.add(Math.floor(region / (ENTRIES * ENTRIES)));
    pds.add(Math.floor(region / ENTRIES));
    if (Array.isArray(v)) pts++;
  }
  return { regions, tablePages: 1 + pdpts.size + pds.size + pts };
}

/** Bytes of page tables an identity map of `ranges` needs (a multiple of 4 KiB). */
export function pageTableBytes(ranges: readonly MapRange[]): number {
  return plan(ranges).tablePages * PAGE_SIZE;
}

function writeEntry(dv: DataView, at: number, address: number, flags: number): void {
  dv.setUint32(at, ((address % 2 ** 32) + flags) >>> 0, true);
  dv.setUint32(at + 4, Math.floor(address / 2 ** 32) & ADDRESS_MASK_HI, true);
}

function readEntry(dv: DataView, at: number): { address: number; flags: number } {
  const lo = dv.getUint32(at, true);
  const hi = dv.getUint32(at + 4, true);
  return { address: (hi & ADDRESS_MASK_HI) * 2 ** 32 + ((lo & 0xffff_f000) >>> 0), flags: lo & 0xfff };
}

export interface BuiltPageTables {
  /** Value for CR3: the PML4's physical address (PCD = PWT = 0). */
  cr3: number;
  /** Bytes of table memory used, from `tablesBase`. */
  bytes: number;
}

/**
 * Writes identity page tables for `ranges` into `ram` (guest RAM at GPA 0)
 * at [tablesBase, tablesBase + tablesSize), which must be 4 KiB aligned and
 * big enough (see pageTableBytes). Table memory is zeroed first.
 */
export function buildIdentityPageTables(ram: Uint8Array, tablesBase: number, tablesSize: number, ranges: readonly MapRange[]): BuiltPageTables {
  const p = plan(ranges);
  const bytes = p.tablePages * PAGE_SIZE;
  if (tablesBase % PAGE_SIZE !== 0) throw new PageTableError(`page-table area ${hex(tablesBase)} is not 4 KiB aligned`);
  if (bytes > tablesSize) throw new PageTableError(`page tables need ${hex(bytes)} bytes, the area has ${hex(tablesSize)}`);
  if (tablesBase < 0 || tablesBase + bytes > ram.length) throw new PageTableError(`page-table area [${hex(tablesBase)}, +${hex(bytes)}) is not inside RAM`);
  ram.fill(0, tablesBase, tablesBase + bytes);
  const dv = new DataView(ram.buffer, ram.byteOffset, ram.byteLength);
  let next = tablesBase;
  const alloc = (): number => {
    const t = next;
    next += PAGE_SIZE;
    return t;
  };
  const pml4 = alloc();
  /** The table an entry points to, created on first use. */
  const child = (table: number, index: number): number => {
    const at = table + index * 8;
    const e = readEntry(dv, at);
    if (e.flags & Pte.Present) return e.address;
    const t = alloc();
    writeEntry(dv, at, t, TABLE_FLAGS);
    return t;
  };
  const regions = [...p.regions.keys()].sort((a, b) => a - b);
  for (const region of regions) {
    const base = region * LARGE_PAGE_SIZE;
    const pdpt = child(pml4, Math.floor(base / 2 ** 39) % ENTRIES);
    const pd = child(pdpt, Math.floor(base / 2 ** 30) % ENTRIES);
    const pdIndex = region % ENTRIES;
    const v = p.regions.get(region)!;
    if (typeof v === 'number') {
      writeEntry(dv, pd + pdIndex * 8, base, v | Pte.PageSize);
      continue;
    }
    const pt = child(pd, pdIndex);
    for (const piece of v) {
      for (let a = piece.start; a < piece.end; a += PAGE_SIZE) {
        writeEntry(dv, pt + ((a - base) / PAGE_SIZE) * 8, a, piece.flags);
      }
    }
  }
  return { cr3: pml4, bytes: next - tablesBase };
}

export interface Translation {
  physical: number;
  /** 4 KiB, 2 MiB or 1 GiB. */
  pageSize: number;
  /** Effective rights: AND of R/W and U/S over every level (SDM §4.6). */
  writable: boolean;
  user: boolean;
  /** PCD of the leaf. */
  cacheDisable: boolean;
  /** PWT of the leaf. */
  writeThrough: boolean;
}

/** Translates `virtual` through the 4-level tables at `cr3` in `ram`; undefined when not present. */
export function walkPageTables(ram: Uint8Array, cr3: number, virtual: number): Translation | undefined {
  const dv = new DataView(ram.buffer, ram.byteOffset, ram.byteLength);
  const read = (table: number, index: number): { address: number; flags: number } | undefined => {
    const at = table + index * 8;
    if (at < 0 || at + 8 > ram.length) return undefined;
    const e = readEntry(dv, at);
    return e.flags & Pte.Present ? e : undefined;
  };
  let writable = true;
  let user = true;
  const acc = (f: number): void => {
    writable &&= (f & Pte.Writable) !== 0;
    user &&= (f & Pte.User) !== 0;
  };
  const leaf = (e: { address: number; flags: number }, size: number): Translation => {
    acc(e.flags);
    return {
      physical: e.address - (e.address % size) + (virtual % size),
      pageSize: size,
      writable,
      user,
      cacheDisable: (e.flags & Pte.CacheDisable) !== 0,
      writeThrough: (e.flags & Pte.WriteThrough) !== 0,
    };
  };
  const pml4e = read(cr3 - (cr3 % PAGE_SIZE), Math.floor(virtual / 2 ** 39) % ENTRIES);
  if (!pml4e) return undefined;
  acc(pml4e.flags);
  const pdpte = read(pml4e.address, Math.floor(virtual / 2 ** 30) % ENTRIES);
  if (!pdpte) return undefined;
  if (pdpte.flags & Pte.PageSize) return leaf(pdpte, HUGE_PAGE_SIZE);
  acc(pdpte.flags);
  const pde = read(pdpte.address, Math.floor(virtual / 2 ** 21) % ENTRIES);
  if (!pde) return undefined;
  if (pde.flags & Pte.PageSize) return leaf(pde, LARGE_PAGE_SIZE);
  acc(pde.flags);
  const pte = read(pde.address, Math.floor(virtual / PAGE_SIZE) % ENTRIES);
  if (!pte) return undefined;
  return leaf(pte, PAGE_SIZE);
}
