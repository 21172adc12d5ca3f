// Events per million frames moved: what the data path paid per frame beyond
// the copies (guest kicks, interrupts, worker sleeps and wake-ups, syscalls,
// Fill-ring refills). bench device and bench pmd report the same fields.
import type { PairCounters } from '../io/pair-counters';
import type { XskStatistics } from '../native/xsk';
import { summarize } from './stats';
import type { ThreadCpu } from '../host/cpu-affinity';

export interface PerMillion {
  /** Driver notify writes (guest kicks: ioeventfd / eventfd writes), both queues. */
  kicks: number;
  /** Of those, on the transmit queues (the driver posted frames to send). */
  txKicks: number;
  /** Of those, on the receive queues (the driver posted receive buffers). */
  rxKicks: number;
  /** Used-buffer notifications the device sent (irqfd / call eventfd writes). */
  interrupts: number;
  /** epoll_wait calls: the worker armed notifications and slept (its only poll call). */
  polls: number;
  /** Sleeps that ended on an event (kick, frame, stop) rather than the timeout. */
  wakeups: number;
  /** Sleeps that ran to their timeout (nothing woke the worker). */
  timeouts: number;
  /** sendto calls (Tx kicks). */
  sendto: number;
  /** recvfrom calls (Fill-ring wake-ups: the kernel had run out of buffers). */
  recvfrom: number;
  /** Fill-ring refills that handed the kernel frames. */
  fillRefills: number;
  /** Service rounds of the worker (one TX and one RX pass each). */
  rounds: number;
  /** Frames the kernel dropped because the Fill ring was empty (the worker did not give frames back in time). */
  dropFillEmpty: number;
  /** Frames the kernel dropped because the Rx ring was full (the worker did not take them in time). */
  dropRxFull: number;
}

/** Driver notifies on each kind of queue. */
export interface Kicks {
  tx: number;
  rx: number;
}

/** `frames` moved with `kicks` driver notifies, the worker's counters `c` and the socket's kernel drops over the same window. */
export function perMillion(frames: number, kicks: Kicks, c: PairCounters, kernel?: XskStatistics): PerMillion {
  const f = frames > 0 ? 1e6 / frames : 0;
  return {
    kicks: (kicks.tx + kicks.rx) * f,
    txKicks: kicks.tx * f,
    rxKicks: kicks.rx * f,
    interrupts: c.device.interrupts * f,
    polls: c.worker.sleeps * f,
    wakeups: c.worker.wakeups * f,
    timeouts: (c.worker.sleeps - c.worker.wakeups) * f,
    sendto: c.backend.txKicks * f,
    recvfrom: c.backend.rxKicks * f,
    fillRefills: c.backend.fillRefills * f,
    rounds: c.worker.rounds * f,
    dropFillEmpty: (kernel?.rxFillRingEmpty ?? 0) * f,
    dropRxFull: (kernel?.rxRingFull ?? 0) * f,
  };
}

/** One `xdpvm-counters {...}` line of `xdpvm run` (src/cli/run-command.ts). */
export interface VmmCounters {
  when: string;
  nets: Array<{ id: string; ifname: string; pairs: Array<PairCounters & { pair: number; kernel?: XskStatistics }> }>;
  /** The VMM's named threads (vCPUs, I/O threads) and their CPU time over the whole run. */
  threads?: ThreadCpu[];
}

/** The last counters line in the VMM's stderr, or undefined. */
export function parseVmmCounters(stderr: string): VmmCounters | undefined {
  const lines = [...stderr.matchAll(/^xdpvm-counters (\{.*\})\r?$/gm)];
  const last = lines[lines.length - 1];
  if (!last) return undefined;
  try {
    const v = JSON.parse(last[1]!) as VmmCounters;
    return Array.isArray(v.nets) ? v : undefined;
  } catch {
    return undefined;
  }
}

/** The pairs of every device summed into one (per-million figures of a whole VM). */
export function sumPairs(pairs: ReadonlyArray<PairCounters & { kernel?: XskStatistics }>): { counters: PairCounters; kernel: XskStatistics } {
  const add = <K extends string>(into: Record<K, number>, from: Record<K, number>): void => {
    for (const k of Object.keys(from) as K[]) into[k] = (into[k] ?? 0) + from[k];
  };
  const counters: PairCounters = { device: {} as PairCounters['device'], worker: {} as PairCounters['worker'], backend: {} as PairCounters['backend'], queueErrors: {}, broken: { cause: 'none', rx: null, tx: null } };
  const kernel = { rxDropped: 0, rxInvalidDescs: 0, txInvalidDescs: 0, rxRingFull: 0, rxFillRingEmpty: 0, txRingEmpty: 0 };
  for (const p of pairs) {
    add(counters.device, p.device);
    add(counters.worker, p.worker);
    add(counters.backend, p.backend);
    add(counters.queueErrors, p.queueErrors);
    if (p.kernel) add(kernel, p.kernel);
  }
  return { counters, kernel };
}

/** The median of each field over the runs. */
export function medianPerMillion(runs: readonly PerMillion[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of Object.keys(runs[0] ?? {}) as Array<keyof PerMillion>) out[k] = summarize(runs.map((r) => r[k])).median;
  return out;
}

export function formatPerMillion(p: PerMillion): string {
  return Object.entries(p)
    .map(([k, v]) => `${k} ${v < 10 ? v.toFixed(1) : v.toFixed(0)}`)
    .join(', ');
}
