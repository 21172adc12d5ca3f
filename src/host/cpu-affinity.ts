// Pinning threads to host CPUs (sched_setaffinity on the calling thread): the
// I/O workers and benchmark loops, so that a run does not depend on where the
// scheduler happened to put each thread and its softirq work.
import { readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { availableParallelism, setPriority } from 'node:os';
import { sys } from '../native/sys';

/** The CPUs this process may use, as it started (before any thread was pinned). */
const STARTUP_CPUS = Array.from({ length: availableParallelism() }, (_, i) => i);

/** Pins the calling thread to `cpu`; a CPU the process may not use is reported on stderr and left unpinned. */
export function pinThisThread(cpu: number, who: string): boolean {
  const r = sys.setThreadAffinity([cpu]);
  if (r === 0) return true;
  process.stderr.write(`xdpvm: ${who}: cannot pin to CPU ${cpu} (errno ${-r}); left to the scheduler\n`);
  return false;
}

/** The calling thread's Linux thread id ("PID/task/TID" behind /proc/thread-self), or 0. */
export function thisThreadId(): number {
  try {
    return Number(readlinkSync('/proc/thread-self').split('/').pop()) || 0;
  } catch {
    return 0;
  }
}

/**
 * Sets the niceness of thread `tid` of this process (setpriority on a TID
 * applies to that thread only, on Linux). Lowering it below 0 needs
 * CAP_SYS_NICE; a refusal is reported on stderr and the thread keeps its own.
 */
export function setThreadNice(tid: number, nice: number, who: string): boolean {
  try {
    setPriority(tid, nice);
    return true;
  } catch (e) {
    process.stderr.write(`xdpvm: ${who}: cannot set niceness ${nice} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); left as it was\n`);
    return false;
  }
}

/**
 * Sets the timer slack of thread `tid` of this process (/proc/TID/timerslack_ns,
 * Linux 4.6+): how late the kernel may end its timed waits to batch wake-ups,
 * 50 µs by default, as long as the waits of a thread that coalesces for 50 µs.
 * A refusal is reported on stderr and the thread keeps its own.
 */
export function setThreadTimerSlack(tid: number, ns: number, who: string): boolean {
  try {
    writeFileSync(`/proc/${tid}/timerslack_ns`, String(ns));
    return true;
  } catch (e) {
    process.stderr.write(`xdpvm: ${who}: cannot set timer slack ${ns} ns (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); left as it was\n`);
    return false;
  }
}

/**
 * Names the calling thread (its comm, at most 15 bytes) so that top, perf and /proc tell the vCPU and I/O
 * threads apart (QEMU names its threads the same way). A refusal changes nothing else and is not reported.
 */
export function nameThisThread(name: string): void {
  try {
    writeFileSync('/proc/thread-self/comm', name.slice(0, 15));
  } catch {
    // Only a label: a kernel without writable comm leaves "node".
  }
}

/** A named thread of this process and its CPU time (schedstat): run on a CPU, and waiting on a run queue. */
export interface ThreadCpu {
  name: string;
  tid: number;
  runNs: number;
  waitNs: number;
}

/** This process's threads whose name starts with `prefix`, with their CPU time so far. */
export function namedThreadCpu(prefix: string): ThreadCpu[] {
  const out: ThreadCpu[] = [];
  let tids: string[];
  try {
    tids = readdirSync('/proc/self/task');
  } catch {
    return out;
  }
  for (const t of tids) {
    try {
      const name = readFileSync(`/proc/self/task/${t}/comm`, 'utf8').trim();
      if (!name.startsWith(prefix)) continue;
      const tid = Number(t);
      const { run, wait } = threadSchedNs(tid);
      out.push({ name, tid, runNs: run, waitNs: wait });
    } catch {
      // The thread ended while we looked.
    }
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.tid - b.tid));
}

/**
 * Pins every thread of this process but `except` (Linux TIDs) to `cpu`: V8's platform workers and libuv's pool,
 * which otherwise wake on whichever CPU and take it from a pinned busy loop. Returns the TIDs pinned, for
 * unpinThreads; a thread that ended meanwhile, or refused, is left out.
 */
export function pinOtherThreads(cpu: number, except: readonly number[]): number[] {
  let tids: string[];
  try {
    tids = readdirSync('/proc/self/task');
  } catch {
    return [];
  }
  const pinned: number[] = [];
  for (const t of tids) {
    const tid = Number(t);
    if (except.includes(tid)) continue;
    if (sys.setThreadAffinity([cpu], tid) === 0) pinned.push(tid);
  }
  return pinned;
}

/** Undoes pinOtherThreads: those threads may run on every CPU they could at start-up again (if they still exist). */
export function unpinThreads(tids: readonly number[]): void {
  for (const tid of tids) sys.setThreadAffinity(STARTUP_CPUS, tid);
}

/** Undoes pinThisThread: the calling thread may run on every CPU it could at start-up again. */
export function unpinThisThread(): void {
  sys.setThreadAffinity(STARTUP_CPUS);
}

/**
 * Where a benchmark puts its threads: the device's I/O worker and the
 * baseline loop share the last CPU, the driver standing in for the guest
 * takes the first. With a single CPU nothing is pinned. The same from any
 * thread, pinned or not.
 */
export function benchCpus(): { driver: number; io: number } | undefined {
  // The process's CPUs as it started: availableParallelism() follows the calling thread's affinity, 1 once pinned.
  const n = STARTUP_CPUS.length;
  return n >= 2 ? { driver: 0, io: n - 1 } : undefined;
}

/**
 * Nanoseconds thread `tid` of this process has run on a CPU and has waited on a run queue for one
 * (/proc schedstat; 'self': the calling thread); NaN when unknown.
 */
export function threadSchedNs(tid: number | 'self'): { run: number; wait: number } {
  try {
    const f = tid === 'self' ? '/proc/thread-self/schedstat' : `/proc/self/task/${tid}/schedstat`;
    const [run, wait] = readFileSync(f, 'utf8').split(' ');
    return { run: Number(run), wait: Number(wait) };
  } catch {
    return { run: NaN, wait: NaN };
  }
}
