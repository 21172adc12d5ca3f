// Segment descriptors, the GDT, the 64-bit TSS and IDT gates a VMM writes
// into guest memory before entering a guest directly in long mode, and the
// matching kvm_segment values for KVM_SET_SREGS (which must agree with the
// descriptors: a later segment load reads them from the table).
// Intel SDM vol. 3A: §3.4.5 segment descriptors, §3.4.5.1 type field,
// §7.2.3 TSS descriptor in 64-bit mode, §7.7 64-bit TSS, §6.14.1 64-bit IDT
// gate descriptors.
import type { Segment } from '../../kvm/regs';

export interface SegmentDescriptor {
  base: number;
  /** 20-bit limit as stored (in 4 KiB units when g = 1). */
  limit: number;
  /** §3.4.5.1: e.g. 0xB code execute/read accessed, 0x3 data read/write accessed, 0x9/0xB 64-bit TSS available/busy. */
  type: number;
  /** 1 code/data, 0 system (TSS, LDT, gates). */
  s: number;
  dpl: number;
  present: number;
  avl: number;
  /** 64-bit code segment. */
  l: number;
  /** Default operation size (must be 0 when l = 1). */
  db: number;
  /** Granularity: limit in 4 KiB units. */
  g: number;
}

/** §3.4.5.1 type values used here. */
export const enum SegType {
  DataReadWriteAccessed = 0x3,
  CodeExecReadAccessed = 0xb,
  Tss64Available = 0x9,
  Tss64Busy = 0xb,
  InterruptGate64 = 0xe,
  TrapGate64 = 0xf,
}

/**
 * The GDT layout of xdpvm's directly-entered guests. The user entries sit in
 * the order SYSRET expects (STAR[63:48] = 0x18: CS32, then SS at +8, CS64
 * at +16), so a guest kernel could use them unchanged.
 */
export const enum Selector {
  Null = 0x00,
  KernelCode = 0x08,
  KernelData = 0x10,
  UserCode32 = 0x18 | 3,
  UserData = 0x20 | 3,
  UserCode = 0x28 | 3,
  /** vCPU i's TSS is at Tss0 + 16 * i (each 64-bit TSS descriptor takes two slots). */
  Tss0 = 0x30,
}

export const TSS64_SIZE = 104;
/** SDM vol. 1 §19.5.2: one bit per port, 65536 ports. */
export const IO_BITMAP_BYTES = 8192;
/**
 * A 64-bit TSS followed by an I/O permission bitmap that allows every port,
 * and the byte after it: the processor reads two bitmap bytes per check, so
 * the bitmap ends with an all-ones byte inside the segment limit (§19.5.2).
 */
export const TSS64_WITH_IO_BITMAP_SIZE = TSS64_SIZE + IO_BITMAP_BYTES + 1;
/** §7.7 field offsets. */
export const TSS64_RSP0 = 4;
export const TSS64_IST1 = 36;
export const TSS64_IOMAP_BASE = 102;
export const IDT_GATE_SIZE = 16;

const FLAT_LIMIT = 0xfffff;

export const KERNEL_CODE64: SegmentDescriptor = { base: 0, limit: FLAT_LIMIT, type: SegType.CodeExecReadAccessed, s: 1, dpl: 0, present: 1, avl: 0, l: 1, db: 0, g: 1 };
export const KERNEL_DATA: SegmentDescriptor = { base: 0, limit: FLAT_LIMIT, type: SegType.DataReadWriteAccessed, s: 1, dpl: 0, present: 1, avl: 0, l: 0, db: 1, g: 1 };
export const USER_CODE32: SegmentDescriptor = { ...KERNEL_CODE64, dpl: 3, l: 0, db: 1 };
export const USER_DATA: SegmentDescriptor = { ...KERNEL_DATA, dpl: 3 };
export const USER_CODE64: SegmentDescriptor = { ...KERNEL_CODE64, dpl: 3 };

function checkDescriptor(d: SegmentDescriptor): void {
  if (d.limit < 0 || d.limit > FLAT_LIMIT) throw new RangeError(`segment limit 0x${d.limit.toString(16)} is not 20 bits`);
  if (d.type < 0 || d.type > 15 || d.dpl < 0 || d.dpl > 3) throw new RangeError('segment type or DPL out of range');
  if (d.l && d.db) throw new RangeError('a 64-bit code segment (L = 1) must have D/B = 0 (SDM §5.2.1)');
}

/** The two little-endian dwords of an 8-byte segment descriptor (base must fit 32 bits). */
export function encodeDescriptor(d: SegmentDescriptor): [number, number] {
  checkDescriptor(d);
  if (d.base < 0 || d.base > 0xffff_ffff) throw new RangeError('an 8-byte descriptor holds a 32-bit base');
  const lo = ((d.base & 0xffff) << 16) | (d.limit & 0xffff);
  const hi =
    ((d.base >>> 16) & 0xff) |
    (d.type << 8) |
    (d.s << 12) |
    (d.dpl << 13) |
    (d.present << 15) |
    (((d.limit >>> 16) & 0xf) << 16) |
    (d.avl << 20) |
    (d.l << 21) |
    (d.db << 22) |
    (d.g << 23) |
    (((d.base >>> 24) & 0xff) << 24);
  return [lo >>> 0, hi >>> 0];
}

export function decodeDescriptor(lo: number, hi: number): SegmentDescriptor {
  return {
    base: ((lo >>> 16) | ((hi & 0xff) << 16) | (hi & 0xff00_0000)) >>> 0,
    limit: (lo & 0xffff) | (hi & 0x000f_0000),
    type: (hi >>> 8) & 0xf,
    s: (hi >>> 12) & 1,
    dpl: (hi >>> 13) & 3,
    present: (hi >>> 15) & 1,
    avl: (hi >>> 20) & 1,
    l: (hi >>> 21) & 1,
    db: (hi >>> 22) & 1,
    g: (hi >>> 23) & 1,
  };
}

/** §7.2.3: a 16-byte 64-bit TSS descriptor (four dwords). */
export function encodeTssDescriptor(base: number, limit = TSS64_SIZE - 1, busy = true): [number, number, number, number] {
  if (!Number.isSafeInteger(base) || base < 0) throw new RangeError('TSS base');
  const low = encodeDescriptor({
    base: base % 2 ** 32,
    limit,
    type: busy ? SegType.Tss64Busy : SegType.Tss64Available,
    s: 0,
    dpl: 0,
    present: 1,
    avl: 0,
    l: 0,
    db: 0,
    g: 0,
  });
  return [low[0], low[1], Math.floor(base / 2 ** 32) >>> 0, 0];
}

/** Bytes of the GDT for `vcpus` TSS descriptors. */
export function gdtSize(vcpus: number): number {
  return Selector.Tss0 + 16 * vcpus;
}

export function tssSelector(vcpu: number): number {
  return Selector.Tss0 + 16 * vcpu;
}

/** The GDT: null, kernel code/data, user code32/data/code64, then one TSS descriptor per vCPU (each `tssSize` bytes). */
export function buildGdt(tssBases: readonly number[], tssSize = TSS64_SIZE): Uint8Array {
  const out = new Uint8Array(gdtSize(tssBases.length));
  const dv = new DataView(out.buffer);
  const put = (selector: number, d: SegmentDescriptor): void => {
    const [lo, hi] = encodeDescriptor(d);
    dv.setUint32(selector & ~7, lo, true);
    dv.setUint32((selector & ~7) + 4, hi, true);
  };
  put(Selector.KernelCode, KERNEL_CODE64);
  put(Selector.KernelData, KERNEL_DATA);
  put(Selector.UserCode32, USER_CODE32);
  put(Selector.UserData, USER_DATA);
  put(Selector.UserCode, USER_CODE64);
  tssBases.forEach((base, i) => {
    encodeTssDescriptor(base, tssSize - 1).forEach((w, k) => dv.setUint32(tssSelector(i) + 4 * k, w, true));
  });
  return out;
}

/**
 * §7.7: a 64-bit TSS with RSP0 (the stack for entries into ring 0) and IST1.
 * With `ioBitmap`, an I/O permission bitmap follows it that allows every port
 * (§19.5.2): ring-3 port I/O is then allowed whatever RFLAGS.IOPL is. Hosts
 * whose KVM does not keep the guest's IOPL = 3 for ring 3 (a PVM KVM runs
 * ring 3 with IOPL 0) decide every `in`/`out` by this bitmap. Without it the
 * I/O map base points past the limit: no bitmap, only IOPL decides.
 */
export function buildTss(rsp0: number, ist1 = 0, ioBitmap = false): Uint8Array {
  const out = new Uint8Array(ioBitmap ? TSS64_WITH_IO_BITMAP_SIZE : TSS64_SIZE);
  const dv = new DataView(out.buffer);
  const u64 = (at: number, v: number): void => {
    dv.setUint32(at, v % 2 ** 32, true);
    dv.setUint32(at + 4, Math.floor(v / 2 ** 32), true);
  };
  u64(TSS64_RSP0, rsp0);
  u64(TSS64_IST1, ist1);
  // The map base is the bitmap's offset in the TSS; an all-zero bitmap allows every port.
  dv.setUint16(TSS64_IOMAP_BASE, TSS64_SIZE, true);
  if (ioBitmap) out[TSS64_SIZE + IO_BITMAP_BYTES] = 0xff;
  return out;
}

/** §6.14.1: one 16-byte 64-bit interrupt/trap gate. */
export function encodeIdtGate(offset: number, selector = Selector.KernelCode as number, type = SegType.InterruptGate64 as number, dpl = 0, ist = 0): Uint8Array {
  const out = new Uint8Array(IDT_GATE_SIZE);
  const dv = new DataView(out.buffer);
  dv.setUint16(0, offset & 0xffff, true);
  dv.setUint16(2, selector, true);
  dv.setUint8(4, ist & 7);
  dv.setUint8(5, type | (dpl << 5) | 0x80);
  dv.setUint16(6, (offset >>> 16) & 0xffff, true);
  dv.setUint32(8, Math.floor(offset / 2 ** 32) >>> 0, true);
  return out;
}

/** The kvm_segment for a selector whose descriptor is `d` (limit expanded to bytes, as KVM wants it). */
export function kvmSegment(selector: number, d: SegmentDescriptor, base: number = d.base): Segment {
  return {
    base: BigInt(base),
    limit: d.g ? ((d.limit << 12) | 0xfff) >>> 0 : d.limit,
    selector,
    type: d.type,
    present: d.present,
    dpl: d.dpl,
    db: d.db,
    s: d.s,
    l: d.l,
    g: d.g,
    avl: d.avl,
    unusable: 0,
  };
}

/** An unusable segment register (e.g. LDTR with no LDT). */
export function unusableSegment(): Segment {
  return { base: 0n, limit: 0, selector: 0, type: 0, present: 0, dpl: 0, db: 0, s: 0, l: 0, g: 0, avl: 0, unusable: 1 };
}
