// How a vCPU that busy-polls its queues and the I/O thread serving them run
// when they share one host CPU (the only layout that leaves a 2-CPU host a CPU
// for the traffic's other end). Measured with `xdpvm bench device --threads
// --placement shared` (README, "Queues and CPUs"):
// - the I/O thread does not spin waiting: whatever it waits for (the guest's
//   buffers, or frames the kernel delivers) needs this CPU. Its poll bound
//   (1 ms after traffic) is spent in coalescing naps with notifications
//   off, so a guest that goes on sending does not kick (an exit) each time
//   the thread finds nothing (io-fwd under PVM: 6-8k kicks per million
//   frames, ~70 with the naps; throughput the same);
// - it coalesces: after a round that moved only a few frames, and when a
//   transmit kick wakes it, it waits a little, so frames are handled in
//   batches rather than one per round or one burst per kick (io-fwd: 31k
//   wake-ups per million frames without the kick's wait, 4-8k with it);
// - the vCPU runs at a lower priority than the I/O thread: a guest that polls
//   never keeps its own device from running, and the I/O thread, which sleeps
//   when it has nothing to do, costs the guest only the work it does for it.

export interface SharedCpuPolicy {
  /** The I/O thread's poll bound (WorkerRunnerOptions.pollUs): here spent napping, not spinning. */
  pollUs: number;
  /** The I/O thread's coalescing wait (WorkerRunnerOptions.coalesceUs). */
  coalesceUs: number;
  /** Niceness of the vCPU threads (the I/O threads keep theirs). */
  vcpuNice: number;
}

export const SHARED_CPU_POLICY: Readonly<SharedCpuPolicy> = { pollUs: 1000, coalesceUs: 50, vcpuNice: 19 };

/**
 * The shortest coalescing wait taken (0 turns coalescing off). A wait is a futex sleep and a wake-up, which cost
 * about as much as the frames a 10 µs wait gathers: bench device io-fwd (shared CPU) fell from 0.7 to 0.06 Mpps
 * at 10 µs, with 8.5k kicks and 10 µs of I/O-thread CPU per frame; 25 µs and up behaved.
 */
export const MIN_COALESCE_US = 25;

/** Why `us` is not a coalescing wait we take, or undefined when it is (0, or MIN_COALESCE_US and up). */
export function coalesceUsProblem(us: number): string | undefined {
  return us === 0 || us >= MIN_COALESCE_US ? undefined : `${us} µs is below the ${MIN_COALESCE_US} µs a wait takes to pay for itself (0 turns coalescing off)`;
}
