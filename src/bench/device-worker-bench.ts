// `xdpvm bench device --backend af-xdp --threads --mode txonly|rxonly|io-fwd`:
// the device as the VMM runs it. The device services its queue pair in its
// own I/O worker against an AF_XDP socket on one end of a veth pair; a
// poll-mode driver in this thread stands in for the PMD guest
// (guest-images/pmd): split rings, used rings polled, RX buffers given back
// in the same round, bursts of `burst` frames, a kick only when the device
// asks for one (used->flags without NO_NOTIFY; with --event-idx on, its
// avail_event), interrupts suppressed. EVENT_IDX is off by default, as in
// the PMD guest's default and DPDK's virtio PMD.
// The driver is PmdDriverPair (pmd-driver.ts), one per queue pair, on the
// test driver's rings (src/test-driver: DriverQueue + SplitBufferRing).
//
// The peer end of the veth: an XDP program counting and dropping what
// arrives (txonly, io-fwd) and the raw C XSK generator (rxonly, io-fwd).
// Alternated run by run with the raw C loop in the driver's place on the
// same veth: C TX for txonly, C RX for rxonly and io-fwd; io-fwd also runs
// the C forwarding loop (receive, swap MACs, send back in place), the bound
// for the same work: raw C rx does not pay for the sends. Counted at both
// ends. By default the worker and the C loop are pinned to one CPU,
// the driver to another, and the generator (rxonly, io-fwd) is left to the
// scheduler (--placement: other layouts). The headline ratio is the median
// of the per-run ratios.
import { availableParallelism } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { featureMask, NetHdr, VirtioFeature } from 'virtio-spec-types';
import type { BenchRunOptions } from './bench-run-options';
import { AfXdpBackend } from '../backend/af-xdp/af-xdp-backend';
import { guestUmemTailBytes } from '../backend/af-xdp/guest-umem';
import { DEFAULT_RING_SIZE } from '../backend/af-xdp/xsk-socket';
import { DEFAULT_PMD_QUEUE_SIZE } from './pmd-bench';
import { benchCpus, pinOtherThreads, pinThisThread, setThreadNice, thisThreadId, threadSchedNs, unpinThisThread, unpinThreads } from '../host/cpu-affinity';
import { SHARED_CPU_POLICY, coalesceUsProblem } from '../io/shared-cpu-policy';
import { inNetns, VethPair } from '../host/netns';
import { WORKER_COUNTERS, type PairCounters } from '../io/pair-counters';
import { SERVICE_BUDGET } from '../virtio/net/queue-pair';
import { DEFAULT_POLL_US, WorkerQueuePairRunner } from '../io/worker-queue-pair-runner';
import { sys } from '../native/sys';
import { xsk, type XskStatistics } from '../native/xsk';
import { type DriverQueue, GuestRam } from '../test-driver';
import type { QueueConfig } from '../virtio/device';
import { formatPerMillion, medianPerMillion, perMillion, type Kicks, type PerMillion } from './per-million';
import { resultHeader, type BenchResult } from './report';
import { pairedRatio, summarize } from './stats';
import { PMD_BUFFER_SIZE, PmdDriverPair, type PmdDriverCounts } from './pmd-driver';
import { XdpCounter } from './xdp-counter';
import { runCReceivers, runEndpoint, type EndpointDirection, type EndpointParams, type EndpointResult } from './xsk-endpoint';

export type DeviceWorkerMode = 'txonly' | 'rxonly' | 'io-fwd';
export const DEVICE_WORKER_MODES: readonly DeviceWorkerMode[] = ['txonly', 'rxonly', 'io-fwd'];

export interface DeviceWorkerBenchOptions extends BenchRunOptions {
  /** The mode of the peer's counting XDP program (default native; bench pmd's default is skb, see PmdBenchOptions.peerXdp). */
  peerXdp?: 'native' | 'skb';
  /** Default txonly. */
  mode?: DeviceWorkerMode;
  /** Entries of every virtqueue (DEVICE_QUEUE_SIZES; default bench pmd's, 1024). */
  queueSize?: number;
  /** Frames the driver handles per round (the PMD guest's burst=; default 32). The C loops take the device's batch (SERVICE_BUDGET). */
  burst?: number;
  /** Queue pairs (default 1): one socket each on the veth's queues, the driver serving all of them. */
  queues?: number;
  /** I/O threads serving the pairs (default one per pair; fewer: pairs round-robin over them). */
  ioThreads?: number;
  /** Where the threads run (default split); see PLACEMENTS. */
  placement?: Placement;
  /** The I/O worker's idle rounds before it sleeps (WorkerRunnerOptions.spinRounds; default the runner's). */
  spinRounds?: number;
  /** The I/O worker's busy-poll bound in µs (WorkerRunnerOptions.pollUs; default the runner's, shared: SHARED_CPU_POLICY's). */
  pollUs?: number;
  /** The I/O worker's coalescing wait in µs (WorkerRunnerOptions.coalesceUs; default 0, shared: SHARED_CPU_POLICY's). */
  coalesceUs?: number;
  /** Niceness of the driver thread, which stands in for the vCPU (default 0, shared: SHARED_CPU_POLICY's vcpuNice). */
  driverNice?: number;
  /**
   * Where the peer's receive side (its XDP counter) runs: in softirq inside the sender's sendto (the kernel's
   * default, so on the device's CPU), or in NAPI threads on the CPU that is not the device's (shared: the
   * generator's). Both sides of a run get the same. Default softirq: measured on 2 CPUs, io-fwd shared, the
   * threads cost more than they move (the peer's ring overflows while its thread waits for the generator's
   * CPU, and device and C forwarder both lost ~30%).
   */
  peerNapi?: PeerNapi;
  /**
   * The driver negotiates VIRTIO_F_EVENT_IDX (default false: as the PMD guest, whose event_idx= is off unless
   * `bench pmd --event-idx on`, and as DPDK's virtio PMD). Without it the driver kicks whenever the device has not
   * set VIRTQ_USED_F_NO_NOTIFY (§2.7.7), and the device cannot ask for a kick only after a batch (§2.7.10).
   */
  eventIdx?: boolean;
}

export const PEER_NAPI = ['softirq', 'threaded'] as const;
export type PeerNapi = (typeof PEER_NAPI)[number];

/** The placement a mode runs with by default: the generator of rxonly and io-fwd gets a CPU of its own, as with the C loop. */
export function defaultPlacement(mode: DeviceWorkerMode): Placement {
  return mode === 'txonly' ? 'split' : 'shared';
}

/** What the worker and driver run with: the options given, else the shared-CPU policy where they share one. */
function threadPolicy(o: DeviceWorkerBenchOptions, placement: Placement): { pollUs: number; coalesceUs: number; driverNice: number } {
  const shared = placement === 'shared';
  return {
    pollUs: o.pollUs ?? (shared ? SHARED_CPU_POLICY.pollUs : DEFAULT_POLL_US),
    coalesceUs: o.coalesceUs ?? (shared ? SHARED_CPU_POLICY.coalesceUs : 0),
    driverNice: o.driverNice ?? (shared ? SHARED_CPU_POLICY.vcpuNice : 0),
  };
}

/**
 * Thread placement on a machine with 2 or more CPUs (C: the last CPU, A: the first):
 * - split: I/O worker and C loop on C, driver on A, generator unpinned (txonly's default);
 * - shared: worker, driver and C loop on C, generator on A (the device path gets one CPU, as the C loop;
 *   rxonly's and io-fwd's default), the worker and driver as SHARED_CPU_POLICY says;
 * - gen-io: as split, with the generator on C beside the worker / C loop;
 * - none: nothing pinned.
 */
export const PLACEMENTS = ['split', 'shared', 'gen-io', 'none'] as const;
export type Placement = (typeof PLACEMENTS)[number];

function placeThreads(p: Placement): { cpus: Cpus; generator: number | undefined } {
  const c = benchCpus();
  if (!c || p === 'none') return { cpus: undefined, generator: undefined };
  if (p === 'shared') return { cpus: { driver: c.io, io: c.io }, generator: c.driver };
  return { cpus: c, generator: p === 'gen-io' ? c.io : undefined };
}

/** Guest RAM of the driver at least; more when the rings' buffers need it (benchRam). */
const MIN_RAM = 16 << 20;
/**
 * How long the driver loop runs before the window opens: its code and the worker's get optimised meanwhile, on
 * V8's platform threads, which share the driver's CPU. With 300 ms the last compile jobs fell into the window and
 * preempted the driver for 4 ms slices (the worker idled 5-8% instead of 2-3%); 3/4 of the window, 300 ms to 1.5 s.
 */
function warmupMs(seconds: number): number {
  return Math.min(1500, Math.max(300, seconds * 750));
}
/** Quiet time after the warm-up: the worker drains the rings and publishes its counters. */
const DRAIN_MS = 30;
/** Virtqueue sizes the bench takes (--queue-size; bench pmd takes the same). */
export const DEVICE_QUEUE_SIZES = [256, 512, 1024] as const;
/**
 * The PMD guest's rings under bench pmd: the driver stands in for it. On a CPU shared with the driver (io-fwd)
 * a wake-up of the worker serves up to a ring of frames, so the ring sets how many the coalescing wait buys:
 * measured 2-CPU, io-fwd, 3 rounds of 2 runs alternated: 0.66-1.09 of raw C rx with 1024, 0.51-0.72 with 256;
 * txonly and rxonly the same with both.
 */
const DEFAULT_QUEUE_SIZE = DEFAULT_PMD_QUEUE_SIZE;
const BUF = PMD_BUFFER_SIZE;
// Per-packet code reads these: the package's exports are getters.
const HDR = NetHdr.SIZE;
/** The generator starts this long before the measured window and stops after it. */
const GEN_LEAD_MS = 400;
const GEN_MARGIN_S = 2.5;

/** The frames a device run counted at both ends; io-fwd's difference, received but not forwarded, is the driver's Tx ring full. */
function frameCounts(mode: DeviceWorkerMode, d: DeviceRunsResult, generated: number): string {
  if (mode === 'txonly') return `sent ${d.packets}, peer counted ${d.peerPackets}`;
  if (mode === 'rxonly') return `received ${d.packets}, generator sent ${generated}`;
  return `received ${d.rxUsed}, forwarded ${d.packets} (${d.fwdDropped} dropped: Tx ring full), peer counted ${d.peerPackets}, generator sent ${generated}`;
}

type Cpus = ReturnType<typeof benchCpus>;

/** What one device run counted. */
export interface DeviceRunResult {
  /** The figure of the mode: frames the device sent (txonly), the driver received (rxonly), the driver forwarded (io-fwd). */
  packets: number;
  /** Transmit buffers the device returned to the driver. */
  txUsed: number;
  /** Receive buffers the device filled. */
  rxUsed: number;
  /** io-fwd: frames received with no free transmit buffer (dropped by the driver, as the PMD does). */
  fwdDropped: number;
  /** Driver notify writes (kicks) on each kind of queue during the window. */
  kicks: Kicks;
  seconds: number;
  /** Worker, device and backend counters over the window (later minus earlier snapshot). */
  counters: PairCounters;
  /** CPU time per frame of `packets` over the window, in ns: the I/O worker's and the driver's. */
  workerNsPerFrame: number;
  driverNsPerFrame: number;
  /** Share of the window the worker / the driver were runnable but waited for a CPU (other threads had it). */
  workerCpuWait: number;
  driverCpuWait: number;
  /** The kernel's drops on the device's socket over the window (XDP_STATISTICS). */
  kernel: XskStatistics;
}

function statsPlus(a: XskStatistics, b: XskStatistics): XskStatistics {
  const out = { ...a };
  for (const k of Object.keys(out) as Array<keyof XskStatistics>) out[k] = a[k] + b[k];
  return out;
}

/** The loops of one C side (one per queue) as one result: packets and kicks summed, the longest window. */
function sumEndpoints(each: readonly EndpointResult[]): EndpointResult {
  return each.reduce((a, b) => ({
    ...a, packets: a.packets + b.packets, seconds: Math.max(a.seconds, b.seconds), kicks: a.kicks + b.kicks,
    cpuSeconds: (a.cpuSeconds ?? NaN) + (b.cpuSeconds ?? NaN), kernel: statsPlus(a.kernel, b.kernel),
  }));
}

function statsMinus(b: XskStatistics, a: XskStatistics): XskStatistics {
  const out = { ...b };
  for (const k of Object.keys(out) as Array<keyof XskStatistics>) out[k] = b[k] - a[k];
  return out;
}

/** b - a for every counter group (the window's share of cumulative counters). */
function minus(b: PairCounters, a: PairCounters): PairCounters {
  const d = <K extends string>(x: Record<K, number>, y: Record<K, number>): Record<K, number> => {
    const out = {} as Record<K, number>;
    for (const k of Object.keys(x) as K[]) out[k] = x[k] - y[k];
    return out;
  };
  return {
    device: d(b.device, a.device), worker: d(b.worker, a.worker), backend: d(b.backend, a.backend), queueErrors: b.queueErrors, broken: b.broken,
    ...(b.guestUmem && a.guestUmem ? { guestUmem: d(b.guestUmem, a.guestUmem) } : {}),
  };
}

/** a + b for every counter group (pairs of one run together). */
function countersPlus(a: PairCounters, b: PairCounters): PairCounters {
  const d = <K extends string>(x: Record<K, number>, y: Record<K, number>): Record<K, number> => {
    const out = {} as Record<K, number>;
    for (const k of Object.keys(x) as K[]) out[k] = x[k] + y[k];
    return out;
  };
  return {
    device: d(a.device, b.device), worker: d(a.worker, b.worker), backend: d(a.backend, b.backend), queueErrors: a.queueErrors, broken: a.broken,
    ...(a.guestUmem && b.guestUmem ? { guestUmem: d(a.guestUmem, b.guestUmem) } : {}),
  };
}

function ringConfig(q: DriverQueue): QueueConfig {
  return { index: q.index, size: q.size, kind: 'split', enabled: true, descAddr: q.descAddr, driverAddr: q.driverAddr, deviceAddr: q.deviceAddr };
}

/** The CPU of each I/O thread: round-robin over the CPUs from `cpus.io` down, the driver's CPU last. */
function ioThreadCpus(cpus: Cpus, threads: number): (number | undefined)[] {
  if (!cpus) return Array.from({ length: threads }, () => undefined);
  const n = availableParallelism();
  const order = Array.from({ length: n }, (_, k) => (cpus.io - k + n) % n).filter((c) => c !== cpus.driver || cpus.driver === cpus.io);
  if (cpus.driver !== cpus.io) order.push(cpus.driver);
  return Array.from({ length: threads }, (_, t) => order[t % order.length]);
}

/** What every pair of a run counted, and each pair's share. */
export interface DeviceRunsResult extends DeviceRunResult {
  peerPackets: number;
  /** Per queue pair: the mode's figure (frames sent, received or forwarded) per second, in Mpps. */
  queueMpps: number[];
  /** The I/O threads' CPUs (undefined: not pinned) and the thread of each pair. */
  ioCpus: (number | undefined)[];
  threadOf: number[];
}

/**
 * One timed run of the device in its I/O threads, with the poll-mode driver (all pairs, round-robin) in this
 * thread. `peer()` is read at the window's edges (the peer's XDP counter) for the frames that crossed in it.
 */
async function deviceRun(
  netns: string,
  ifname: string,
  mode: DeviceWorkerMode,
  o: DeviceWorkerBenchOptions & { burst: number; queues: number; ioThreads: number; queueSize: number },
  cpus: Cpus,
  policy: { pollUs: number; coalesceUs: number; driverNice: number },
  peer: (() => number) | undefined,
  guestUmem = false,
): Promise<DeviceRunsResult> {
  const nq = o.queues;
  const RAM = benchRam(nq, o.queueSize);
  // guest-umem: the driver's RAM, with bounce frames behind it, is the UMEM the I/O threads service in place.
  const umem = guestUmem ? sys.guestMemory(RAM + guestUmemTailBytes(nq, DEFAULT_RING_SIZE)) : undefined;
  const backend = openBenchBackend(netns, ifname, o.xdpMode, nq, umem, RAM);
  const mapping = umem ?? sys.mapAnonymous(RAM, 'thp');
  const threadOf = Array.from({ length: nq }, (_, k) => k % o.ioThreads);
  const ioCpus = ioThreadCpus(cpus, o.ioThreads);
  const runner = new WorkerQueuePairRunner({
    regions: [{ gpa: 0, address: sys.addressOf(mapping), length: RAM }],
    backends: backend.threadSources(),
    rebind: (p) => backend.rebindForThread(p),
    threadOf,
    cpus: ioCpus,
    ...(o.spinRounds !== undefined ? { spinRounds: o.spinRounds } : {}),
    pollUs: policy.pollUs,
    coalesceUs: policy.coalesceUs,
  });
  if (cpus) pinThisThread(cpus.driver, 'benchmark driver');
  const driverTid = thisThreadId();
  let strays: number[] = [];
  try {
    const ram = new GuestRam(RAM, 0, mapping);
    const pairs: PmdDriverPair[] = [];
    const eventIdx = o.eventIdx === true;
    const features = eventIdx ? featureMask(VirtioFeature.VERSION_1, VirtioFeature.EVENT_IDX) : featureMask(VirtioFeature.VERSION_1);
    for (let q = 0; q < nq; q++) {
      const fds = runner.fds[q]!;
      // §4.1.5.2 in spirit: a notify is one eventfd write, as an ioeventfd turns the PMD's MMIO write into.
      const d = new PmdDriverPair(ram, { mode, size: o.queueSize, burst: o.burst, frameSize: o.size, eventIdx, notify: (index) => void sys.eventfdWrite(index === 0 ? fds.rxKick : fds.txKick, 1) });
      pairs.push(d);
      runner.start(
        { pair: q, rx: { ...ringConfig(d.rxq), index: 2 * q }, tx: { ...ringConfig(d.txq), index: 2 * q + 1 }, features, mergeable: false, offloads: { csum: false, tso: false } },
        { memory: ram.memory, signalUsed: () => {}, markNeedsReset: () => {} },
      );
    }
    for (let i = 0; i < 200 && !pairs.every((_, q) => runner.isRunning(q)); i++) await sleep(5);
    if (!pairs.every((_, q) => runner.isRunning(q))) throw new Error('bench: the I/O threads did not start');
    // Only now: a thread inherits its creator's niceness, and the I/O threads must not run at the vCPU's.
    if (policy.driverNice !== 0) setThreadNice(driverTid, policy.driverNice, 'benchmark driver');
    for (const d of pairs) d.start();
    const fwd = mode === 'io-fwd';
    const txOnly = mode === 'txonly';
    const fds = backend.sockets.map((s) => s.fd);
    const tids = [...new Set(pairs.map((_, q) => runner.threadId(q)))];
    // The process's other threads (V8's platform workers, libuv's pool) go where no I/O thread runs: left free,
    // they woke on the I/O CPU (~1.5% of it in txonly). The raw C loops run in processes of their own.
    const strayCpu = benchCpus()?.driver;
    if (cpus && strayCpu !== undefined) strays = pinOtherThreads(strayCpu, [driverTid, ...tids]);
    /** The poll-mode driver: every pair round-robin, for `ms`. */
    const drive = (ms: number): void => {
      const deadline = performance.now() + ms;
      for (let iter = 0; ; iter++) {
        if ((iter & 255) === 0 && performance.now() >= deadline) break;
        for (let q = 0; q < nq; q++) pairs[q]!.round();
      }
    };
    // Warm-up, unmeasured: the driver's and the worker's hot code is optimised only once it has run (an idle wait
    // warms nothing). Then the rings drain, and the window opens from a quiet start, so both ends count the same frames.
    drive(warmupMs(o.seconds));
    await sleep(DRAIN_MS);
    const kicks0 = pairs.map((d) => d.kicks);
    const stats0 = pairs.map((_, q) => runner.stats(q)!);
    const kernel0 = fds.map((fd) => xsk.statistics(fd));
    const workerCpu0 = tids.map((t) => threadSchedNs(t));
    const driverCpu0 = threadSchedNs('self');
    const peer0 = peer?.() ?? 0;
    const driver0 = pairs.map((d) => d.snapshot());
    const start = performance.now();
    drive(o.seconds * 1000);
    const seconds = (performance.now() - start) / 1000;
    const workerSched = tids.map((t) => threadSchedNs(t));
    const driverSched = threadSchedNs('self');
    const workerCpu = workerSched.reduce((sum, w, i) => sum + w.run - workerCpu0[i]!.run, 0);
    const driverCpu = driverSched.run - driverCpu0.run;
    // The threads' mean share of the window spent waiting for a CPU.
    const workerCpuWait = workerSched.reduce((sum, w, i) => sum + w.wait - workerCpu0[i]!.wait, 0) / tids.length / 1e9 / seconds;
    const driverCpuWait = (driverSched.wait - driverCpu0.wait) / 1e9 / seconds;
    const kernel = fds.map((fd, q) => statsMinus(xsk.statistics(fd), kernel0[q]!)).reduce(statsPlus);
    const peerPackets = (peer?.() ?? 0) - peer0;
    const kicks: Kicks = {
      tx: pairs.reduce((sum, d, q) => sum + d.kicks.tx - kicks0[q]!.tx, 0),
      rx: pairs.reduce((sum, d, q) => sum + d.kicks.rx - kicks0[q]!.rx, 0),
    };
    // The threads publish every 64 rounds and before they sleep: give them a moment.
    await sleep(20);
    const perPair = pairs.map((_, q) => minus(runner.stats(q)!, stats0[q]!));
    const counters = perPair.reduce(countersPlus);
    // The driver's counts over the window.
    const inWindow = pairs.map((d, q) => d.since(driver0[q]!));
    const figure = (q: number): number => (txOnly ? perPair[q]!.backend.txPackets : fwd ? inWindow[q]!.forwarded : inWindow[q]!.rxUsed);
    const queueMpps = pairs.map((_, q) => figure(q) / seconds / 1e6);
    const packets = pairs.reduce((sum, _, q) => sum + figure(q), 0);
    const sum = (k: keyof PmdDriverCounts): number => inWindow.reduce((acc, w) => acc + w[k], 0);
    return {
      packets, txUsed: sum('txUsed'), rxUsed: sum('rxUsed'), fwdDropped: sum('fwdDropped'), kicks, seconds, counters, peerPackets, kernel,
      workerNsPerFrame: workerCpu / Math.max(1, packets), driverNsPerFrame: driverCpu / Math.max(1, packets), workerCpuWait, driverCpuWait,
      queueMpps, ioCpus, threadOf,
    };
  } finally {
    if (cpus) unpinThisThread();
    unpinThreads(strays);
    // Raising niceness back needs CAP_SYS_NICE; without it the main thread stays nice (and says so).
    if (policy.driverNice !== 0) setThreadNice(driverTid, 0, 'benchmark driver');
    await runner.close();
    backend.close();
    sys.unmap(mapping);
  }
}

export function checkDeviceWorkerOptions(o: DeviceWorkerBenchOptions): { mode: DeviceWorkerMode; burst: number; queues: number; ioThreads: number; queueSize: number } {
  const mode = o.mode ?? 'txonly';
  const queueSize = o.queueSize ?? DEFAULT_QUEUE_SIZE;
  if (!(DEVICE_QUEUE_SIZES as readonly number[]).includes(queueSize)) throw new RangeError(`queue-size: ${queueSize} is not ${DEVICE_QUEUE_SIZES.join(', ')}`);
  const queues = o.queues ?? 1;
  const ioThreads = o.ioThreads ?? queues;
  if (!Number.isInteger(queues) || queues < 1 || queues > 8) throw new RangeError(`queues: ${queues} is not 1..8`);
  if (!Number.isInteger(ioThreads) || ioThreads < 1 || ioThreads > queues) throw new RangeError(`io-threads: ${ioThreads} is not 1..${queues} (at most one per queue pair)`);
  if (o.placement !== undefined && !PLACEMENTS.includes(o.placement)) throw new RangeError(`placement: '${String(o.placement)}' is not ${PLACEMENTS.join(', ')}`);
  if (o.peerNapi !== undefined && !PEER_NAPI.includes(o.peerNapi)) throw new RangeError(`peer-napi: '${String(o.peerNapi)}' is not ${PEER_NAPI.join(', ')}`);
  if (!DEVICE_WORKER_MODES.includes(mode)) throw new RangeError(`mode: '${String(mode)}' is not ${DEVICE_WORKER_MODES.join(', ')}`);
  const coalesceProblem = o.coalesceUs !== undefined ? coalesceUsProblem(o.coalesceUs) : undefined;
  if (coalesceProblem) throw new RangeError(`coalesce-us: ${coalesceProblem}`);
  const burst = o.burst ?? 32;
  if (!Number.isInteger(burst) || burst < 1 || burst > queueSize) throw new RangeError(`burst: ${burst} is not 1..${queueSize}`);
  if (!Number.isInteger(o.size) || o.size < 60 || o.size > BUF - HDR) throw new RangeError(`size: ${o.size} is not 60..${BUF - HDR}`);
  if (!(o.seconds > 0) || !Number.isInteger(o.runs) || o.runs < 1) throw new RangeError('seconds must be > 0 and runs a positive integer');
  return { mode, burst, queues, ioThreads, queueSize };
}

/** The driver's RAM: every pair's receive and transmit buffers (BUF each) and rings, at least MIN_RAM, whole MiB. */
function benchRam(queues: number, queueSize: number): number {
  const need = queues * 2 * queueSize * BUF + (1 << 20);
  return Math.max(MIN_RAM, Math.ceil(need / (1 << 20)) << 20);
}

export async function benchDeviceWorker(o: DeviceWorkerBenchOptions): Promise<BenchResult> {
  const { mode, burst, queues, ioThreads, queueSize } = checkDeviceWorkerOptions(o);
  const oo = { ...o, burst, queues, ioThreads, queueSize };
  // The I/O worker and the C loop on the same CPU (their softirq work lands there too), the driver on another:
  // otherwise each run measures where the scheduler put the threads as much as the code.
  const placement = o.placement ?? defaultPlacement(mode);
  const { cpus, generator: genCpu } = placeThreads(placement);
  const policy = threadPolicy(o, placement);
  const where = (c: number | undefined): string => (c === undefined ? '-' : String(c));
  // The peer counts only what the device sends (no counter in rxonly: nothing to move).
  const napiCpu = mode === 'rxonly' ? undefined : (benchCpus()?.driver);
  const peerNapi: PeerNapi = napiCpu === undefined ? 'softirq' : (o.peerNapi ?? 'softirq');
  o.progress(
    `  placement ${placement}: driver CPU ${where(cpus?.driver)}, I/O thread CPUs ${ioThreadCpus(cpus, ioThreads).map(where).join('/')} ` +
      `(pairs ${Array.from({ length: queues }, (_, k) => `${k}->${k % ioThreads}`).join(' ')}), C loops with their pair's I/O thread, ` +
      `generator CPU ${mode !== 'txonly' ? where(genCpu) : 'none'}, peer receive ${peerNapi === 'threaded' ? `in NAPI threads on CPU ${where(napiCpu)}` : 'in softirq'}, counting in ${o.peerXdp ?? 'native'} XDP; I/O poll ${policy.pollUs} µs, coalesce ${policy.coalesceUs} µs, driver niceness ${policy.driverNice}`,
  );
  const pair = new VethPair('devw', { queues });
  const runs: Array<Record<string, unknown>> = [];
  const rows: Array<{ mpps: number; baselineMpps: number }> = [];
  const fwdRows: Array<{ mpps: number; baselineMpps: number }> = [];
  /** io-fwd, per run: raw C io-fwd / raw C rx. */
  const fwdOfRx: number[] = [];
  // One C loop per queue, each where that queue's I/O thread runs, with the device's batch: the frames one
  // service round moves per direction and sends per kick (SERVICE_BUDGET), not the driver's burst.
  const cLoops = (direction: EndpointDirection): EndpointParams[] => {
    const loopCpus = ioThreadCpus(cpus, ioThreads);
    return Array.from({ length: queues }, (_, q): EndpointParams => {
      const cpu = loopCpus[q % ioThreads];
      return {
        netns: pair.a.netns, ifname: pair.a.ifname, impl: 'c', direction, xdpMode: o.xdpMode,
        seconds: o.seconds, size: o.size, batch: SERVICE_BUDGET, queue: q, ...(cpu !== undefined ? { cpu } : {}),
      };
    });
  };
  const per: PerMillion[] = [];
  let counter: XdpCounter | undefined;
  const generate = mode !== 'txonly';
  // One generator per queue: the peer's queue k sends into the device's queue k (veth maps them one to one).
  const generator = async (seconds: number): Promise<EndpointResult> => {
    const all = await Promise.all(
      Array.from({ length: queues }, (_, q) =>
        runEndpoint({ netns: pair.b.netns, ifname: pair.b.ifname, impl: 'c', direction: 'tx', xdpMode: o.xdpMode, seconds, size: o.size, batch: 64, queue: q, ...(genCpu !== undefined ? { cpu: genCpu } : {}) }, `raw C generator ${q}`),
      ),
    );
    return all.reduce((a, b) => ({ ...a, packets: a.packets + b.packets, seconds: Math.max(a.seconds, b.seconds) }));
  };
  try {
    // Frames coming back to the peer: txonly's and io-fwd's figure at the other end.
    if (mode !== 'rxonly') counter = inNetns(pair.b.netns, () => XdpCounter.attach(xsk.ifNameToIndex(pair.b.ifname), o.peerXdp ?? 'native'));
    if (peerNapi === 'threaded') pair.threadNapi('b', napiCpu!);
    const c = counter;
    for (let r = 0; r < o.runs; r++) {
      const row: Record<string, unknown> = { run: r + 1 };
      let dMpps = 0;
      let cMpps = 0;
      let fMpps = 0;
      // Rotated run by run, so no side always runs first.
      const sides: Array<'device' | 'c' | 'cfwd'> = mode === 'io-fwd' ? ['device', 'c', 'cfwd'] : ['device', 'c'];
      for (const impl of [...sides.slice(r % sides.length), ...sides.slice(0, r % sides.length)]) {
        // The generator surrounds the measured window (worker start-up included).
        const gen = generate ? generator(o.seconds + GEN_MARGIN_S) : undefined;
        if (gen) await sleep(GEN_LEAD_MS);
        if (impl === 'device') {
          const d = await deviceRun(pair.a.netns, pair.a.ifname, mode, oo, cpus, policy, c ? () => c.total() : undefined);
          const generated = gen ? (await gen).packets : 0;
          await sleep(50);
          // txonly: what the peer counted; rxonly: what the driver took; io-fwd: what came back to the peer.
          const figure = mode === 'rxonly' ? d.packets : d.peerPackets;
          dMpps = figure / d.seconds / 1e6;
          const pm = perMillion(d.packets, d.kicks, d.counters, d.kernel);
          per.push(pm);
          Object.assign(row, {
            mpps: dMpps, queueMpps: d.queueMpps, ioCpus: d.ioCpus.map((c) => c ?? null), threadOf: d.threadOf, packets: d.packets, peerPackets: mode === 'rxonly' ? generated : d.peerPackets, seconds: d.seconds,
            ...(generate ? { generated } : {}), txUsed: d.txUsed, rxUsed: d.rxUsed, fwdDropped: d.fwdDropped, kicks: d.kicks.tx + d.kicks.rx, txKicks: d.kicks.tx, rxKicks: d.kicks.rx, perMillion: pm,
            workerNsPerFrame: d.workerNsPerFrame, driverNsPerFrame: d.driverNsPerFrame, workerCpuWait: d.workerCpuWait, driverCpuWait: d.driverCpuWait, kernel: d.kernel,
            counters: { worker: d.counters.worker, device: d.counters.device, backend: d.counters.backend },
          });
          o.progress(
            `  run ${r + 1}/${o.runs} device (I/O worker): ${dMpps.toFixed(3)} Mpps; ` +
              frameCounts(mode, d, generated) +
              (queues > 1 ? ` (per queue ${d.queueMpps.map((m) => m.toFixed(3)).join(' / ')} Mpps)` : '') +
              ` in ${d.seconds.toFixed(2)} s; CPU/frame worker ${d.workerNsPerFrame.toFixed(0)} ns, driver ${d.driverNsPerFrame.toFixed(0)} ns; I/O threads asleep ${(d.counters.worker.sleptUs / 1e4 / d.seconds / queues).toFixed(0)}% and coalescing ${(d.counters.worker.coalescedUs / 1e4 / d.seconds / queues).toFixed(0)}%, waiting for a CPU ${(d.workerCpuWait * 100).toFixed(0)}% (driver ${(d.driverCpuWait * 100).toFixed(0)}%); per Mframe: ${formatPerMillion(pm)}`,
          );
        } else if (impl === 'cfwd') {
          const before = c!.total();
          const each = await runCReceivers(cLoops('fwd'));
          const res = sumEndpoints(each);
          const generated = gen ? (await gen).packets : 0;
          await sleep(50);
          const back = c!.total() - before;
          fMpps = back / res.seconds / 1e6;
          Object.assign(row, {
            fwdBaselineMpps: fMpps, fwdBaselinePackets: res.packets, fwdBaselinePeerPackets: back, fwdBaselineGenerated: generated,
            fwdBaselineQueueMpps: each.map((e) => e.packets / e.seconds / 1e6), fwdBaselineKernel: res.kernel,
          });
          o.progress(
            `  run ${r + 1}/${o.runs} raw C io-fwd      : ${fMpps.toFixed(3)} Mpps; forwarded ${res.packets}, peer counted ${back}, generator sent ${generated} in ${res.seconds.toFixed(2)} s; ` +
              `kernel drops: fill ring empty ${res.kernel.rxFillRingEmpty}, rx ring full ${res.kernel.rxRingFull}`,
          );
        } else {
          const before = c?.total() ?? 0;
          const loops = cLoops(mode === 'txonly' ? 'tx' : 'rx');
          const each = mode === 'txonly' ? await Promise.all(loops.map((l) => runEndpoint(l, `C tx queue ${l.queue}`))) : await runCReceivers(loops);
          const res = sumEndpoints(each);
          row.baselineQueueMpps = each.map((e) => e.packets / e.seconds / 1e6);
          const generated = gen ? (await gen).packets : 0;
          await sleep(50);
          const peer = mode === 'txonly' ? (c?.total() ?? 0) - before : generated;
          cMpps = res.packets / res.seconds / 1e6;
          const cNs = ((res.cpuSeconds ?? NaN) * 1e9) / Math.max(1, res.packets);
          Object.assign(row, {
            baselineNsPerFrame: cNs,
            baselineMpps: cMpps, baselinePackets: res.packets, baselinePeerPackets: peer, baselineSeconds: res.seconds, baselineKicks: res.kicks, baselineKernel: res.kernel,
          });
          o.progress(
            `  run ${r + 1}/${o.runs} raw C ${mode === 'txonly' ? 'tx' : 'rx'}          : ${cMpps.toFixed(3)} Mpps; ` +
              `${mode === 'txonly' ? 'sent' : 'received'} ${res.packets}, ${mode === 'txonly' ? 'peer counted' : 'generator sent'} ${peer}` +
              (queues > 1 ? ` (per queue ${(row.baselineQueueMpps as number[]).map((m) => m.toFixed(3)).join(' / ')} Mpps)` : '') +
              ` in ${res.seconds.toFixed(2)} s; CPU/frame ${cNs.toFixed(0)} ns` +
              (mode === 'txonly' ? '' : `; kernel drops: fill ring empty ${res.kernel.rxFillRingEmpty}, rx ring full ${res.kernel.rxRingFull}`),
          );
        }
        if (gen) await gen.catch(() => undefined);
      }
      row.ratio = dMpps / cMpps;
      if (mode === 'io-fwd') row.fwdRatio = dMpps / fMpps;
      // What each side's thread spent per frame: the C loop's over the I/O worker's (a host that denies the
      // worker a CPU moves the throughput ratio, not this one; the rx C loop never sleeps, so there it is an upper bound).
      row.cpuRatio = (row.baselineNsPerFrame as number) / (row.workerNsPerFrame as number);
      rows.push({ mpps: dMpps, baselineMpps: cMpps });
      if (mode === 'io-fwd') {
        fwdRows.push({ mpps: dMpps, baselineMpps: fMpps });
        if (cMpps > 0) fwdOfRx.push(fMpps / cMpps);
      }
      runs.push(row);
    }
  } finally {
    counter?.close();
    pair.remove();
  }
  const mpps = summarize(rows.map((r) => r.mpps));
  const base = summarize(rows.map((r) => r.baselineMpps));
  const cpuRatios = runs.map((r) => r.cpuRatio as number).filter((x) => Number.isFinite(x));
  return {
    ...resultHeader(),
    benchmark: 'device-worker',
    workload: mode,
    params: {
      xdpMode: o.xdpMode, seconds: o.seconds, runs: o.runs, size: o.size, burst, baselineBatch: SERVICE_BUDGET, queueSize, eventIdx: o.eventIdx === true, queues, ioThreads,
      threadOf: Array.from({ length: queues }, (_, k) => k % ioThreads), ioThreadCpus: ioThreadCpus(cpus, ioThreads).map((c) => c ?? null),
      cpus: cpus ?? 'not pinned', placement, peerNapi, peerXdpMode: o.peerXdp ?? 'native', ...(peerNapi === 'threaded' ? { peerNapiCpu: napiCpu } : {}), spinRounds: o.spinRounds ?? 'default', pollUs: policy.pollUs, coalesceUs: policy.coalesceUs, driverNice: policy.driverNice,
      generator: generate ? `raw C XSK tx on the peer, batch 64, ${genCpu === undefined ? 'not pinned' : `on CPU ${genCpu}`}` : null,
      counted:
        mode === 'txonly' ? 'mpps = frames the peer XDP counter saw per second; packets = AF_XDP Tx packets the device posted'
        : mode === 'rxonly' ? 'mpps = frames the driver received per second; peerPackets = frames the generator sent (over a longer window)'
        : 'mpps = forwarded frames the peer XDP counter saw per second; packets = frames the driver forwarded; baseline: raw C rx; fwdBaseline: raw C io-fwd, mpps = frames back at the peer per second',
      workerCounters: WORKER_COUNTERS,
    },
    mpps,
    baseline: { name: mode === 'txonly' ? 'raw C' : 'raw C rx', mpps: base },
    ...pairedRatio(rows),
    ...(fwdRows.length
      ? {
          secondBaseline: {
            name: 'raw C io-fwd', mpps: summarize(fwdRows.map((r) => r.baselineMpps)), ...pairedRatio(fwdRows),
            packets: runs.reduce((n, r) => n + (r.fwdBaselinePackets as number), 0), peerPackets: runs.reduce((n, r) => n + (r.fwdBaselinePeerPackets as number), 0),
            ...(fwdOfRx.length ? { ofBaseline: summarize(fwdOfRx) } : {}),
          },
        }
      : {}),
    perMillion: medianPerMillion(per),
    ...(cpuRatios.length ? { cpuRatio: summarize(cpuRatios) } : {}),
    runs,
  };
}

/**
 * The device's backend on the veth: the copy path, or (a guest-RAM mapping given, its first `ramBytes` the
 * guest's) guest RAM as the UMEM; the mapping goes if it fails.
 */
function openBenchBackend(netns: string, ifname: string, xdpMode: DeviceWorkerBenchOptions['xdpMode'], queues: number, umem: ArrayBuffer | undefined, ramBytes: number): AfXdpBackend {
  try {
    return inNetns(netns, () =>
      AfXdpBackend.open(
        { id: 'bench', ifname, mode: xdpMode, forceCopy: false, queues, startQueue: 0, inhibit: false, guestUmem: umem ? 'on' : 'off' },
        undefined,
        umem ? { guestRam: { buffer: umem, guestLength: ramBytes, hugePages: false } } : {},
      ),
    );
  } catch (e) {
    if (umem) sys.unmap(umem);
    throw e;
  }
}

/** One side of a guest-umem comparison run: its figure and what both ends counted. */
interface UmemSide {
  mpps: number;
  d: DeviceRunsResult;
  generated: number;
}

/**
 * `bench device --backend af-xdp --threads --guest-umem`: the device in its I/O threads with guest RAM as the
 * UMEM (frames in place) against the copy path, alternated run by run on the same veth (which goes first swaps
 * each run), the same driver, mode and placement; counted at both ends. The headline ratio is the median of
 * the per-run ratios (guest-umem / copy path); CPU per frame of the I/O threads beside it.
 */
export async function benchDeviceWorkerGuestUmem(o: DeviceWorkerBenchOptions): Promise<BenchResult> {
  const { mode, burst, queues, ioThreads, queueSize } = checkDeviceWorkerOptions(o);
  const oo = { ...o, burst, queues, ioThreads, queueSize };
  const placement = o.placement ?? defaultPlacement(mode);
  const { cpus, generator: genCpu } = placeThreads(placement);
  const policy = threadPolicy(o, placement);
  const pair = new VethPair('devwg', { queues });
  const generate = mode !== 'txonly';
  const generator = async (seconds: number): Promise<number> => {
    const all = await Promise.all(
      Array.from({ length: queues }, (_, q) =>
        runEndpoint({ netns: pair.b.netns, ifname: pair.b.ifname, impl: 'c', direction: 'tx', xdpMode: o.xdpMode, seconds, size: o.size, batch: 64, queue: q, ...(genCpu !== undefined ? { cpu: genCpu } : {}) }, `raw C generator ${q}`),
      ),
    );
    return all.reduce((n, r) => n + r.packets, 0);
  };
  const runs: Array<Record<string, unknown>> = [];
  const rows: Array<{ mpps: number; baselineMpps: number }> = [];
  let counter: XdpCounter | undefined;
  try {
    if (mode !== 'rxonly') counter = inNetns(pair.b.netns, () => XdpCounter.attach(xsk.ifNameToIndex(pair.b.ifname), o.peerXdp ?? 'native'));
    const c = counter;
    for (let r = 0; r < o.runs; r++) {
      const got: Partial<Record<'copy' | 'guest-umem', UmemSide>> = {};
      for (const impl of r % 2 === 0 ? (['copy', 'guest-umem'] as const) : (['guest-umem', 'copy'] as const)) {
        const gen = generate ? generator(o.seconds + GEN_MARGIN_S) : undefined;
        if (gen) await sleep(GEN_LEAD_MS);
        const d = await deviceRun(pair.a.netns, pair.a.ifname, mode, oo, cpus, policy, c ? () => c.total() : undefined, impl === 'guest-umem');
        const generated = gen ? await gen : 0;
        await sleep(50);
        const figure = mode === 'rxonly' ? d.packets : d.peerPackets;
        const side: UmemSide = { mpps: figure / d.seconds / 1e6, d, generated };
        got[impl] = side;
        const g = d.counters.guestUmem;
        o.progress(
          `  run ${r + 1}/${o.runs} ${impl.padEnd(10)}: ${side.mpps.toFixed(3)} Mpps; ` +
            frameCounts(mode, d, generated) +
            ` in ${d.seconds.toFixed(2)} s; CPU/frame I/O thread ${d.workerNsPerFrame.toFixed(0)} ns, driver ${d.driverNsPerFrame.toFixed(0)} ns` +
            (g ? `; in place tx ${g.txDirect} rx ${g.rxDirect}, bounced tx ${g.txBounced} rx ${g.rxBounced}` : ''),
        );
      }
      const z = got['guest-umem']!;
      const cp = got.copy!;
      const side = (s: UmemSide): Record<string, unknown> => ({
        mpps: s.mpps, packets: s.d.packets, peerPackets: mode === 'rxonly' ? s.generated : s.d.peerPackets, seconds: s.d.seconds, rxUsed: s.d.rxUsed, txUsed: s.d.txUsed,
        workerNsPerFrame: s.d.workerNsPerFrame, driverNsPerFrame: s.d.driverNsPerFrame, kernel: s.d.kernel,
        counters: { device: s.d.counters.device, backend: s.d.counters.backend, ...(s.d.counters.guestUmem ? { guestUmem: s.d.counters.guestUmem } : {}) },
      });
      const zs = side(z);
      const cs = side(cp);
      runs.push({
        run: r + 1, ...zs,
        ...Object.fromEntries(Object.entries(cs).map(([k, v]) => [`baseline${k[0]!.toUpperCase()}${k.slice(1)}`, v])),
        ratio: z.mpps / cp.mpps, cpuRatio: cp.d.workerNsPerFrame / z.d.workerNsPerFrame,
      });
      rows.push({ mpps: z.mpps, baselineMpps: cp.mpps });
    }
  } finally {
    counter?.close();
    pair.remove();
  }
  const cpuRatios = runs.map((r) => r.cpuRatio as number).filter((x) => Number.isFinite(x));
  return {
    ...resultHeader(),
    benchmark: 'device-worker-guest-umem',
    subject: 'guest-umem',
    workload: mode,
    params: {
      xdpMode: o.xdpMode, seconds: o.seconds, runs: o.runs, size: o.size, burst, queueSize, eventIdx: o.eventIdx === true, queues, ioThreads,
      cpus: cpus ?? 'not pinned', placement, pollUs: policy.pollUs, coalesceUs: policy.coalesceUs, driverNice: policy.driverNice,
      compared: 'guest-umem=on (guest RAM as the UMEM, serviced in place by the I/O threads) against guest-umem=off (copied into 4 KiB UMEM frames)',
      counted:
        mode === 'txonly' ? 'mpps = frames the peer XDP counter saw per second; packets = AF_XDP Tx packets the device posted'
        : mode === 'rxonly' ? 'mpps = frames the driver received per second; peerPackets = frames the generator sent (over a longer window)'
        : 'mpps = forwarded frames the peer XDP counter saw per second; packets = frames the driver forwarded',
    },
    mpps: summarize(rows.map((r) => r.mpps)),
    baseline: { name: 'copy path', mpps: summarize(rows.map((r) => r.baselineMpps)) },
    ...pairedRatio(rows),
    ...(cpuRatios.length ? { cpuRatio: summarize(cpuRatios) } : {}),
    runs,
  };
}
