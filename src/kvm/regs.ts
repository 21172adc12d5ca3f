// x86 register state as KVM exchanges it (kvm_regs, kvm_sregs, kvm_fpu):
// plain objects in TypeScript, encoded with the layout the addon exports.
// 64-bit values are bigint (kernel addresses do not fit a double); this is
// set-up and inspection code, never the exit hot path.
import { kvmNative, type RegName, type SegmentName } from '../native/kvm';

export type Regs = Record<RegName, bigint>;

export interface Segment {
  base: bigint;
  limit: number;
  selector: number;
  type: number;
  present: number;
  dpl: number;
  db: number;
  s: number;
  l: number;
  g: number;
  avl: number;
  unusable: number;
}

export interface DescriptorTable {
  base: bigint;
  limit: number;
}

export interface Sregs extends Record<SegmentName, Segment> {
  gdt: DescriptorTable;
  idt: DescriptorTable;
  cr0: bigint;
  cr2: bigint;
  cr3: bigint;
  cr4: bigint;
  cr8: bigint;
  efer: bigint;
  apicBase: bigint;
  /** Pending external interrupt as a 256-bit bitmap (four u64 words). */
  interruptBitmap: bigint[];
}

export interface Fpu {
  /** Eight 16-byte x87 registers. */
  fpr: Uint8Array;
  fcw: number;
  fsw: number;
  ftwx: number;
  lastOpcode: number;
  lastIp: bigint;
  lastDp: bigint;
  /** Sixteen 16-byte XMM registers. */
  xmm: Uint8Array;
  /** KVM_GET_FPU reports 0 and KVM_SET_FPU ignores it (the kernel copies every field but this one). */
  mxcsr: number;
}

const R = kvmNative.layout.regs;
const S = kvmNative.layout.sregs;
const SEG = kvmNative.layout.segment;
const DT = kvmNative.layout.dtable;
const F = kvmNative.layout.fpu;

export const REG_NAMES: readonly RegName[] = [
  'rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rsp', 'rbp',
  'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15', 'rip', 'rflags',
];
export const SEGMENT_NAMES: readonly SegmentName[] = ['cs', 'ds', 'es', 'fs', 'gs', 'ss', 'tr', 'ldt'];

export const REGS_SIZE = R.size;
export const SREGS_SIZE = S.size;
export const FPU_SIZE = F.size;

function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

export function decodeRegs(b: Uint8Array): Regs {
  const dv = view(b);
  const r = {} as Regs;
  for (const n of REG_NAMES) r[n] = dv.getBigUint64(R[n], true);
  return r;
}

export function encodeRegs(r: Regs, b: Uint8Array = new Uint8Array(R.size)): Uint8Array {
  const dv = view(b);
  for (const n of REG_NAMES) dv.setBigUint64(R[n], BigInt.asUintN(64, r[n]), true);
  return b;
}

function decodeSegment(dv: DataView, o: number): Segment {
  return {
    base: dv.getBigUint64(o + SEG.base, true),
    limit: dv.getUint32(o + SEG.limit, true),
    selector: dv.getUint16(o + SEG.selector, true),
    type: dv.getUint8(o + SEG.type),
    present: dv.getUint8(o + SEG.present),
    dpl: dv.getUint8(o + SEG.dpl),
    db: dv.getUint8(o + SEG.db),
    s: dv.getUint8(o + SEG.s),
    l: dv.getUint8(o + SEG.l),
    g: dv.getUint8(o + SEG.g),
    avl: dv.getUint8(o + SEG.avl),
    unusable: dv.getUint8(o + SEG.unusable),
  };
}

function encodeSegment(dv: DataView, o: number, s: Segment): void {
  dv.setBigUint64(o + SEG.base, BigInt.asUintN(64, s.base), true);
  dv.setUint32(o + SEG.limit, s.limit >>> 0, true);
  dv.setUint16(o + SEG.selector, s.selector, true);
  dv.setUint8(o + SEG.type, s.type);
  dv.setUint8(o + SEG.present, s.present);
  dv.setUint8(o + SEG.dpl, s.dpl);
  dv.setUint8(o + SEG.db, s.db);
  dv.setUint8(o + SEG.s, s.s);
  dv.setUint8(o + SEG.l, s.l);
  dv.setUint8(o + SEG.g, s.g);
  dv.setUint8(o + SEG.avl, s.avl);
  dv.setUint8(o + SEG.unusable, s.unusable);
}

export function decodeSregs(b: Uint8Array): Sregs {
  const dv = view(b);
  const seg = (n: SegmentName): Segment => decodeSegment(dv, S[n]);
  const dt = (o: number): DescriptorTable => ({ base: dv.getBigUint64(o + DT.base, true), limit: dv.getUint16(o + DT.limit, true) });
  const u64 = (o: number): bigint => dv.getBigUint64(o, true);
  return {
    cs: seg('cs'), ds: seg('ds'), es: seg('es'), fs: seg('fs'), gs: seg('gs'), ss: seg('ss'), tr: seg('tr'), ldt: seg('ldt'),
    gdt: dt(S.gdt),
    idt: dt(S.idt),
    cr0: u64(S.cr0),
    cr2: u64(S.cr2),
    cr3: u64(S.cr3),
    cr4: u64(S.cr4),
    cr8: u64(S.cr8),
    efer: u64(S.efer),
    apicBase: u64(S.apic_base),
    interruptBitmap: [0, 1, 2, 3].map((i) => u64(S.interrupt_bitmap + 8 * i)),
  };
}

export function encodeSregs(s: Sregs, b: Uint8Array = new Uint8Array(S.size)): Uint8Array {
  const dv = view(b);
  for (const n of SEGMENT_NAMES) encodeSegment(dv, S[n], s[n]);
  for (const [o, t] of [[S.gdt, s.gdt], [S.idt, s.idt]] as const) {
    dv.setBigUint64(o + DT.base, BigInt.asUintN(64, t.base), true);
    dv.setUint16(o + DT.limit, t.limit, true);
  }
  const u64 = (o: number, v: bigint): void => dv.setBigUint64(o, BigInt.asUintN(64, v), true);
  u64(S.cr0, s.cr0);
  u64(S.cr2, s.cr2);
  u64(S.cr3, s.cr3);
  u64(S.cr4, s.cr4);
  u64(S.cr8, s.cr8);
  u64(S.efer, s.efer);
  u64(S.apic_base, s.apicBase);
  for (let i = 0; i < 4; i++) u64(S.interrupt_bitmap + 8 * i, s.interruptBitmap[i] ?? 0n);
  return b;
}

export function decodeFpu(b: Uint8Array): Fpu {
  const dv = view(b);
  return {
    fpr: b.slice(F.fpr, F.fpr + 128),
    fcw: dv.getUint16(F.fcw, true),
    fsw: dv.getUint16(F.fsw, true),
    ftwx: dv.getUint8(F.ftwx),
    lastOpcode: dv.getUint16(F.last_opcode, true),
    lastIp: dv.getBigUint64(F.last_ip, true),
    lastDp: dv.getBigUint64(F.last_dp, true),
    xmm: b.slice(F.xmm, F.xmm + 256),
    mxcsr: dv.getUint32(F.mxcsr, true),
  };
}

export function encodeFpu(f: Fpu, b: Uint8Array = new Uint8Array(F.size)): Uint8Array {
  const dv = view(b);
  b.set(f.fpr.subarray(0, 128), F.fpr);
  dv.setUint16(F.fcw, f.fcw, true);
  dv.setUint16(F.fsw, f.fsw, true);
  dv.setUint8(F.ftwx, f.ftwx);
  dv.setUint16(F.last_opcode, f.lastOpcode, true);
  dv.setBigUint64(F.last_ip, BigInt.asUintN(64, f.lastIp), true);
  dv.setBigUint64(F.last_dp, BigInt.asUintN(64, f.lastDp), true);
  b.set(f.xmm.subarray(0, 256), F.xmm);
  dv.setUint32(F.mxcsr, f.mxcsr >>> 0, true);
  return b;
}
