// The TSC frequency to tell a guest (boot info tsc_khz). KVM runs guests at
// the host's TSC rate unless told otherwise, and when the host kernel knows
// that rate exactly (CPUID.15H on Intel, or a hypervisor-provided
// frequency: the `tsc_known_freq` flag) its `cpu MHz` in /proc/cpuinfo is
// that rate. On hosts where `cpu MHz` is the current core clock instead
// (APERF/MPERF present and the TSC rate not known), this returns 0 and the
// guest calibrates against the PIT.
import { readFileSync } from 'node:fs';

export interface CpuinfoTsc {
  khz: number;
  /** Why the value was or was not trusted. */
  reason: string;
}

/** Parses the first CPU of /proc/cpuinfo text. */
export function tscKhzFromCpuinfo(text: string): CpuinfoTsc {
  const first = text.split(/\n\s*\n/)[0] ?? '';
  const field = (name: string): string | undefined => new RegExp(`^${name}\\s*:\\s*(.*)$`, 'm').exec(first)?.[1]?.trim();
  const flags = new Set((field('flags') ?? '').split(/\s+/));
  const mhz = Number(field('cpu MHz'));
  if (!Number.isFinite(mhz) || mhz <= 0) return { khz: 0, reason: 'no "cpu MHz" in /proc/cpuinfo' };
  if (!flags.has('constant_tsc') || !flags.has('nonstop_tsc')) return { khz: 0, reason: 'TSC is not invariant (constant_tsc, nonstop_tsc)' };
  if (!flags.has('tsc_known_freq') && flags.has('aperfmperf')) {
    return { khz: 0, reason: '"cpu MHz" is the current core clock here (aperfmperf, no tsc_known_freq)' };
  }
  return { khz: Math.round(mhz * 1000), reason: flags.has('tsc_known_freq') ? 'tsc_known_freq' : 'cpu MHz without APERF/MPERF is the TSC rate' };
}

/** The host's TSC frequency in kHz, or 0 when it cannot be known from here. */
export function hostTscKhz(cpuinfoPath = '/proc/cpuinfo'): number {
  try {
    return tscKhzFromCpuinfo(readFileSync(cpuinfoPath, 'utf8')).khz;
  } catch {
    return 0;
  }
}
