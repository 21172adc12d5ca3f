// CPUID entries as KVM exchanges them (struct kvm_cpuid2 with
// kvm_cpuid_entry2 entries): encoding and decoding only; policy lives elsewhere.
import { kvmNative } from '../native/kvm';

export interface CpuidEntry {
  function: number;
  index: number;
  /** KVM_CPUID_FLAG_SIGNIFCANT_INDEX (1) when `index` selects a sub-leaf. */
  flags: number;
  eax: number;
  ebx: number;
  ecx: number;
  edx: number;
}

/** KVM accepts at most this many entries (KVM_MAX_CPUID_ENTRIES). */
export const MAX_CPUID_ENTRIES = 256;

const L = kvmNative.layout.cpuid2;

/** An empty kvm_cpuid2 with room for `capacity` entries. */
export function cpuidBuffer(capacity: number): Uint8Array {
  return new Uint8Array(L.entries + capacity * L.entry_size);
}

export function encodeCpuid(entries: readonly CpuidEntry[]): Uint8Array {
  const buf = cpuidBuffer(entries.length);
  const dv = new DataView(buf.buffer);
  dv.setUint32(L.nent, entries.length, true);
  entries.forEach((e, i) => {
    const o = L.entries + i * L.entry_size;
    dv.setUint32(o + L.entry_function, e.function >>> 0, true);
    dv.setUint32(o + L.entry_index, e.index >>> 0, true);
    dv.setUint32(o + L.entry_flags, e.flags >>> 0, true);
    dv.setUint32(o + L.entry_eax, e.eax >>> 0, true);
    dv.setUint32(o + L.entry_ebx, e.ebx >>> 0, true);
    dv.setUint32(o + L.entry_ecx, e.ecx >>> 0, true);
    dv.setUint32(o + L.entry_edx, e.edx >>> 0, true);
  });
  return buf;
}

export function decodeCpuid(buf: Uint8Array, count: number): CpuidEntry[] {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const out: CpuidEntry[] = [];
  for (let i = 0; i < count; i++) {
    const o = L.entries + i * L.entry_size;
    out.push({
      function: dv.getUint32(o + L.entry_function, true),
      index: dv.getUint32(o + L.entry_index, true),
      flags: dv.getUint32(o + L.entry_flags, true),
      eax: dv.getUint32(o + L.entry_eax, true),
      ebx: dv.getUint32(o + L.entry_ebx, true),
      ecx: dv.getUint32(o + L.entry_ecx, true),
      edx: dv.getUint32(o + L.entry_edx, true),
    });
  }
  return out;
}

/** The entry for a leaf (and sub-leaf, where the entry says the index matters). */
export function findCpuid(entries: readonly CpuidEntry[], fn: number, index = 0): CpuidEntry | undefined {
  return entries.find((e) => e.function === fn && ((e.flags & 1) === 0 || e.index === index));
}
