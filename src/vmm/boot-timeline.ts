// When each phase of a boot was reached, in ms since the process started
// (performance.timeOrigin), so `xdpvm run -timeline` and `bench pmd` can say
// where the time to the first packet goes. Every thread records on one clock:
// CLOCK_MONOTONIC (process.hrtime), which is process-wide (a worker's
// performance.timeOrigin is its own start) and is also the clock of
// bpf_ktime_get_ns, so a peer's XDP program can date the first frame on it.
export const BOOT_PHASES = [
  /** Node's own start-up done (performance.nodeTiming.bootstrapComplete): before the first module of xdpvm loads. */
  'nodeReady',
  /** The run command began: every module of the VMM loaded. */
  'modulesLoaded',
  /** Every -netdev's backend open: UMEMs registered, XDP program attached, sockets bound. */
  'backendsOpen',
  /** KVM VM, guest RAM and memory slots, devices, loaded image, vCPUs with their entry state. */
  'vmReady',
  /** The first vCPU thread entered KVM_RUN. */
  'firstKvmRun',
  /** The guest driver set DRIVER_OK on the first virtio-net device. */
  'driverOk',
  /** An I/O worker of the first virtio-net device handed its first guest frame to the kernel (AF_XDP Tx ring). */
  'firstTx',
] as const;

/**
 * Reached in parallel with the phases above, at no fixed place among them: every -netdev's XDP program
 * attached (loaded and linked on the thread pool from backendsOpen on; only receiving needs it).
 */
export const PARALLEL_PHASES = ['xdpAttached'] as const;

export type BootPhase = (typeof BOOT_PHASES)[number] | (typeof PARALLEL_PHASES)[number];

export const ALL_PHASES: readonly BootPhase[] = [...BOOT_PHASES, ...PARALLEL_PHASES];

/** CLOCK_MONOTONIC in ms: the same in every thread and process of the host. */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/** This process's performance.timeOrigin on CLOCK_MONOTONIC (performance.now() counts from it on that clock). */
export function originMonotonicMs(): number {
  return monotonicMs() - performance.now();
}

export interface BootTimelineJson extends Partial<Record<BootPhase, number>> {
  /** Where ms 0 is: the process start, as epoch ms and on CLOCK_MONOTONIC (for times taken elsewhere). */
  origin: { epochMs: number; monotonicMs: number };
  /**
   * CPU time of the whole process (every thread) when the phases this thread marks were reached: with the
   * wall times, how much of the boot was waiting for a CPU on a shared host.
   */
  cpuMs?: Partial<Record<BootPhase, number>>;
}

export class BootTimeline {
  /** Monotonic ms per phase (NaN: not reached). Shared so a vCPU thread can record firstKvmRun. */
  readonly shared = new SharedArrayBuffer(ALL_PHASES.length * 8);
  private readonly at = new Float64Array(this.shared).fill(Number.NaN);
  private readonly origin = originMonotonicMs();
  private readonly cpu: Partial<Record<BootPhase, number>> = {};

  constructor() {
    // Node records its own milestones relative to the time origin.
    this.markAt('nodeReady', this.origin + performance.nodeTiming.bootstrapComplete);
  }

  /** Records `phase` now, unless it was reached before. */
  mark(phase: BootPhase): void {
    if (this.cpu[phase] === undefined) {
      const c = process.cpuUsage();
      this.cpu[phase] = round((c.user + c.system) / 1000);
    }
    this.markAt(phase, monotonicMs());
  }

  /** Records `phase` at monotonic ms `t` (taken by another thread), unless it was reached before. */
  markAt(phase: BootPhase, t: number): void {
    const i = ALL_PHASES.indexOf(phase);
    if (Number.isNaN(this.at[i]!)) this.at[i] = t;
  }

  /** Each reached phase in ms since this process started, and where that start is. */
  toJSON(): BootTimelineJson {
    const out: BootTimelineJson = { origin: { epochMs: performance.timeOrigin, monotonicMs: round(this.origin) } };
    ALL_PHASES.forEach((p, i) => {
      const t = this.at[i]!;
      if (!Number.isNaN(t)) out[p] = round(t - this.origin);
    });
    out.cpuMs = { ...this.cpu };
    return out;
  }
}

const round = (ms: number): number => Math.round(ms * 10) / 10;

/** From a thread holding only the shared block: record the first KVM_RUN once (the first thread wins). */
export function markFirstKvmRun(shared: SharedArrayBuffer): void {
  const at = new Float64Array(shared);
  const i = BOOT_PHASES.indexOf('firstKvmRun');
  // Plain read then write: two vCPUs racing record times microseconds apart, either is right.
  if (Number.isNaN(at[i]!)) at[i] = monotonicMs();
}

/** The line `xdpvm run -timeline` prints. */
export const TIMELINE_PREFIX = 'xdpvm: boot timeline ';

/** The last boot timeline line in `stderr` (xdpvm run -timeline), or undefined when there is none or it is malformed. */
export function parseBootTimeline(stderr: string): BootTimelineJson | undefined {
  const lines = stderr.split('\n').filter((l) => l.startsWith(TIMELINE_PREFIX));
  const last = lines[lines.length - 1];
  if (last === undefined) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(last.slice(TIMELINE_PREFIX.length));
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null) return undefined;
  const o = v as Record<string, unknown>;
  const origin = o.origin as Record<string, unknown> | undefined;
  if (typeof origin !== 'object' || origin === null || typeof origin.epochMs !== 'number' || typeof origin.monotonicMs !== 'number') return undefined;
  const out: BootTimelineJson = { origin: { epochMs: origin.epochMs, monotonicMs: origin.monotonicMs } };
  if (typeof o.cpuMs === 'object' && o.cpuMs !== null) {
    const cpu: Partial<Record<BootPhase, number>> = {};
    for (const p of ALL_PHASES) {
      const v = (o.cpuMs as Record<string, unknown>)[p];
      if (typeof v === 'number' && Number.isFinite(v)) cpu[p] = v;
    }
    out.cpuMs = cpu;
  }
  for (const p of ALL_PHASES) {
    const t = o[p];
    if (t === undefined) continue;
    if (typeof t !== 'number' || !Number.isFinite(t)) return undefined;
    out[p] = t;
  }
  return out;
}
