// When each phase of a boot was reached, in ms since the process started
// (performance.timeOrigin), so `xdpvm run -timeline` and `bench pmd` can say
// where the time to the first packet goes. Threads other than the main one
// record into a shared slot as epoch ms (their own time origin differs).
export const BOOT_PHASES = [
  /** The run command began: Node started and every module of the VMM loaded. */
  'modulesLoaded',
  /** Every -netdev's backend open: UMEMs registered, XDP program attached, sockets bound. */
  'backendsOpen',
  /** KVM VM, guest RAM and memory slots, devices, loaded image, vCPUs with their entry state. */
  'vmReady',
  /** The first vCPU thread entered KVM_RUN. */
  'firstKvmRun',
  /** The guest driver set DRIVER_OK on the first virtio-net device. */
  'driverOk',
] as const;

export type BootPhase = (typeof BOOT_PHASES)[number];

export class BootTimeline {
  /** Epoch ms per phase (NaN: not reached). Shared so a vCPU thread can record firstKvmRun. */
  readonly shared = new SharedArrayBuffer(BOOT_PHASES.length * 8);
  private readonly at = new Float64Array(this.shared).fill(Number.NaN);

  /** Records `phase` now, unless it was reached before. */
  mark(phase: BootPhase): void {
    const i = BOOT_PHASES.indexOf(phase);
    if (Number.isNaN(this.at[i]!)) this.at[i] = performance.timeOrigin + performance.now();
  }

  /** Each reached phase in ms since this process started. */
  toJSON(): Partial<Record<BootPhase, number>> {
    const out: Partial<Record<BootPhase, number>> = {};
    BOOT_PHASES.forEach((p, i) => {
      const t = this.at[i]!;
      if (!Number.isNaN(t)) out[p] = Math.round((t - performance.timeOrigin) * 10) / 10;
    });
    return out;
  }
}

/** From a thread holding only the shared block: record the first KVM_RUN once (the first thread wins). */
export function markFirstKvmRun(shared: SharedArrayBuffer): void {
  const at = new Float64Array(shared);
  const i = BOOT_PHASES.indexOf('firstKvmRun');
  // Plain read then write: two vCPUs racing record times microseconds apart, either is right.
  if (Number.isNaN(at[i]!)) at[i] = performance.timeOrigin + performance.now();
}
