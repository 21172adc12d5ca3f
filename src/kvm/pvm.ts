// PVM ("pagetable-based virtual machine") hosts: a KVM whose guests run
// ring-3 code natively but ring-0 and real-mode code through KVM's
// instruction emulator (far slower), which cannot run some instructions at
// CPL0 (lock cmpxchg16b, xsave/xrstor, and with them AVX state). This
// module detects such a host and gives the CPUID mask that keeps a guest
// away from those instructions.
import { existsSync } from 'node:fs';
import type { CpuidEntry } from './cpuid';

export interface PvmStatus {
  /** /sys/module/kvm_pvm exists: KVM here is (or would be) the PVM flavour. */
  pvm: boolean;
  /** /dev/kvm exists. kvm_pvm does not bind when this kernel is itself a PVM guest. */
  kvmDevice: boolean;
}

export interface PvmPaths {
  sysModule?: string;
  kvmDevice?: string;
}

export function detectPvm(paths: PvmPaths = {}): PvmStatus {
  return {
    pvm: existsSync(paths.sysModule ?? '/sys/module/kvm_pvm'),
    kvmDevice: existsSync(paths.kvmDevice ?? '/dev/kvm'),
  };
}

export const PVM_WARNING =
  'kvm_pvm host: guest ring-0 and real-mode code is emulated (about 1000x slower than ring 3); ' +
  'CPUID hides CX16, and XSAVE and AVX/AVX2/AVX-512 where KVM lets it';

/**
 * Which KVM this host has: none (no /dev/kvm; e.g. a kernel that is itself a
 * PVM guest), a PVM KVM (ring 3 native, ring 0 emulated, no Linux guests), or
 * one on hardware virtualization (VMX/SVM, nested or not).
 */
export type KvmHostKind = 'none' | 'pvm' | 'hardware';

export function kvmHostKind(s: PvmStatus = detectPvm()): KvmHostKind {
  if (!s.kvmDevice) return 'none';
  return s.pvm ? 'pvm' : 'hardware';
}

export const PVM_NO_DEVICE =
  'kvm_pvm is loaded but /dev/kvm is missing: this kernel is itself a PVM guest and cannot run VMs';

/** The one line to print for this host, or null when it is not a PVM host. */
export function pvmWarning(s: PvmStatus): string | null {
  if (!s.pvm) return null;
  return s.kvmDevice ? PVM_WARNING : PVM_NO_DEVICE;
}

export type CpuidReg = 'eax' | 'ebx' | 'ecx' | 'edx';

export interface CpuidBit {
  leaf: number;
  subleaf: number;
  reg: CpuidReg;
  bit: number;
  name: string;
}

const bit = (leaf: number, subleaf: number, reg: CpuidReg, b: number, name: string): CpuidBit => ({ leaf, subleaf, reg, bit: b, name });

/**
 * Features hidden on PVM. CX16, XSAVE, OSXSAVE, AVX, AVX2, AVX-512 are the
 * ones the emulator fails on; the rest (FMA, F16C, VAES, AMX, AVX-VNNI, XOP,
 * FMA4, MPX) need the XSAVE-managed state that is then unavailable, and are
 * hidden so the CPUID a guest sees stays self-consistent, as Linux's own
 * feature-dependency table would make it.
 */
export const PVM_HIDDEN_FEATURES: readonly CpuidBit[] = [
  bit(1, 0, 'ecx', 12, 'FMA'),
  bit(1, 0, 'ecx', 13, 'CX16'),
  bit(1, 0, 'ecx', 26, 'XSAVE'),
  bit(1, 0, 'ecx', 27, 'OSXSAVE'),
  bit(1, 0, 'ecx', 28, 'AVX'),
  bit(1, 0, 'ecx', 29, 'F16C'),
  bit(7, 0, 'ebx', 5, 'AVX2'),
  bit(7, 0, 'ebx', 14, 'MPX'),
  bit(7, 0, 'ebx', 16, 'AVX512F'),
  bit(7, 0, 'ebx', 17, 'AVX512DQ'),
  bit(7, 0, 'ebx', 21, 'AVX512IFMA'),
  bit(7, 0, 'ebx', 26, 'AVX512PF'),
  bit(7, 0, 'ebx', 27, 'AVX512ER'),
  bit(7, 0, 'ebx', 28, 'AVX512CD'),
  bit(7, 0, 'ebx', 30, 'AVX512BW'),
  bit(7, 0, 'ebx', 31, 'AVX512VL'),
  bit(7, 0, 'ecx', 1, 'AVX512VBMI'),
  bit(7, 0, 'ecx', 6, 'AVX512VBMI2'),
  bit(7, 0, 'ecx', 9, 'VAES'),
  bit(7, 0, 'ecx', 10, 'VPCLMULQDQ'),
  bit(7, 0, 'ecx', 11, 'AVX512VNNI'),
  bit(7, 0, 'ecx', 12, 'AVX512BITALG'),
  bit(7, 0, 'ecx', 14, 'AVX512VPOPCNTDQ'),
  bit(7, 0, 'edx', 2, 'AVX512_4VNNIW'),
  bit(7, 0, 'edx', 3, 'AVX512_4FMAPS'),
  bit(7, 0, 'edx', 8, 'AVX512_VP2INTERSECT'),
  bit(7, 0, 'edx', 22, 'AMX_BF16'),
  bit(7, 0, 'edx', 23, 'AVX512_FP16'),
  bit(7, 0, 'edx', 24, 'AMX_TILE'),
  bit(7, 0, 'edx', 25, 'AMX_INT8'),
  bit(7, 1, 'eax', 4, 'AVX_VNNI'),
  bit(7, 1, 'eax', 5, 'AVX512_BF16'),
  bit(7, 1, 'eax', 21, 'AMX_FP16'),
  bit(7, 1, 'eax', 23, 'AVX_IFMA'),
  bit(0x80000001, 0, 'ecx', 11, 'XOP'),
  bit(0x80000001, 0, 'ecx', 16, 'FMA4'),
];

/**
 * The hidden features whose state XSAVE manages (all but CX16), and leaf 0xD.
 * A PVM KVM puts these back in the vCPU's CPUID whatever KVM_SET_CPUID2 said
 * (guest ring 3 runs natively under the host's XCR0, so they work there);
 * only ring-0 code that uses them fails, in the emulator.
 */
export const PVM_XSAVE_STATE_FEATURES: readonly string[] = [
  ...PVM_HIDDEN_FEATURES.filter((f) => f.name !== 'CX16').map((f) => f.name),
  'leaf 0xd',
];

/** Leaves removed whole: 0xD describes XSAVE state components. */
export const PVM_HIDDEN_LEAVES: readonly number[] = [0xd];

/** A copy of `entries` with the PVM mask applied (the input is left alone). */
export function maskCpuidForPvm(entries: readonly CpuidEntry[]): CpuidEntry[] {
  const out: CpuidEntry[] = [];
  for (const e of entries) {
    if (PVM_HIDDEN_LEAVES.includes(e.function)) continue;
    const m = { ...e };
    for (const f of PVM_HIDDEN_FEATURES) {
      const subleafMatches = (m.flags & 1) === 0 ? f.subleaf === 0 : f.subleaf === m.index;
      if (f.leaf === m.function && subleafMatches) m[f.reg] = (m[f.reg] & ~(1 << f.bit)) >>> 0;
    }
    out.push(m);
  }
  return out;
}

/** The hidden features that are still set in `entries` (empty when the mask holds). */
export function pvmFeaturesPresent(entries: readonly CpuidEntry[]): string[] {
  const present: string[] = [];
  for (const f of PVM_HIDDEN_FEATURES) {
    const e = entries.find((x) => x.function === f.leaf && ((x.flags & 1) === 0 ? f.subleaf === 0 : x.index === f.subleaf));
    if (e && ((e[f.reg] >>> f.bit) & 1) === 1) present.push(f.name);
  }
  for (const leaf of PVM_HIDDEN_LEAVES) if (entries.some((x) => x.function === leaf)) present.push(`leaf 0x${leaf.toString(16)}`);
  return present;
}
