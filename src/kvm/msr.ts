// Model-specific registers as KVM exchanges them (struct kvm_msrs).
import { kvmNative } from '../native/kvm';

export interface MsrEntry {
  index: number;
  data: bigint;
}

const M = kvmNative.layout.msrs;

export function encodeMsrs(entries: readonly MsrEntry[]): Uint8Array {
  const buf = new Uint8Array(M.entries + entries.length * M.entry_size);
  const dv = new DataView(buf.buffer);
  dv.setUint32(M.nmsrs, entries.length, true);
  entries.forEach((e, i) => {
    const o = M.entries + i * M.entry_size;
    dv.setUint32(o + M.entry_index, e.index >>> 0, true);
    dv.setBigUint64(o + M.entry_data, BigInt.asUintN(64, e.data), true);
  });
  return buf;
}

export function decodeMsrs(buf: Uint8Array, count: number): MsrEntry[] {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const out: MsrEntry[] = [];
  for (let i = 0; i < count; i++) {
    const o = M.entries + i * M.entry_size;
    out.push({ index: dv.getUint32(o + M.entry_index, true), data: dv.getBigUint64(o + M.entry_data, true) });
  }
  return out;
}

/** A few architectural MSR numbers a VMM sets up. */
export const enum Msr {
  ApicBase = 0x1b,
  MiscEnable = 0x1a0,
  Pat = 0x277,
  Efer = 0xc0000080,
  Star = 0xc0000081,
  Lstar = 0xc0000082,
  Cstar = 0xc0000083,
  SyscallMask = 0xc0000084,
  FsBase = 0xc0000100,
  GsBase = 0xc0000101,
  KernelGsBase = 0xc0000102,
  Tsc = 0x10,
  SysenterCs = 0x174,
  SysenterEsp = 0x175,
  SysenterEip = 0x176,
}
