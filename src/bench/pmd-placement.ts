// Where `xdpvm bench pmd` puts the guest's vCPUs, the device's I/O threads,
// the peer's generators and the raw C loops, and the policy they run with.
// The placement is part of the result (JSON params, terminal header): a
// figure means little without it on a host with as few CPUs as threads.
import { availableParallelism } from 'node:os';
import { SHARED_CPU_POLICY } from '../io/shared-cpu-policy';
import type { PmdMode } from './pmd-bench';

/**
 * - shared: queue pair k's vCPU, I/O thread and (baseline) C loop on one CPU, counted down from the last;
 *   generators on the CPUs left over (unpinned when none are); vCPUs and I/O threads as SHARED_CPU_POLICY says;
 * - split: I/O thread t and C loop k on the CPU counted down from the last, the vCPUs round-robin on the
 *   CPUs left to them (all of them when the I/O threads take every CPU), generators unpinned, the default
 *   I/O policy;
 * - none: nothing pinned, the default I/O policy.
 */
export const PMD_PLACEMENTS = ['shared', 'split', 'none'] as const;
export type PmdPlacementName = (typeof PMD_PLACEMENTS)[number];

export interface PmdPlacement {
  name: PmdPlacementName;
  /** The I/O thread of each queue pair (pairs round-robin over the threads: iothread-vq-mapping=). */
  threadOf: number[];
  /** Per vCPU / I/O thread / generator / C loop (undefined: not pinned). */
  vcpuCpus: (number | undefined)[];
  ioCpus: (number | undefined)[];
  generatorCpus: (number | undefined)[];
  loopCpus: (number | undefined)[];
  vcpuNice?: number;
  pollUs?: number;
  coalesceUs?: number;
}

/** txonly has no generator: its vCPU and I/O thread get a CPU each. The others leave the generator a CPU of its own. */
export function defaultPmdPlacement(mode: PmdMode): PmdPlacementName {
  return mode === 'txonly' ? 'split' : 'shared';
}

/**
 * I/O threads when the user names none: one per pair, but split leaves the vCPUs at least one CPU, so on 2 CPUs
 * two pairs share one I/O thread (QEMU's iothread-vq-mapping): two threads there would each share a CPU with a
 * busy-polling vCPU of the other pair.
 */
export function defaultPmdIoThreads(name: PmdPlacementName, queues: number, cpus = availableParallelism()): number {
  return name === 'split' ? Math.max(1, Math.min(queues, cpus - 1)) : queues;
}

/** `ioThreads` I/O threads serve the `queues` pairs (default one each); I/O thread t runs where its first pair's would. */
export function pmdPlacement(name: PmdPlacementName, queues: number, cpus = availableParallelism(), ioThreads = queues): PmdPlacement {
  const pairs = Array.from({ length: queues }, (_, k) => k);
  const threads = Array.from({ length: Math.min(ioThreads, queues) }, (_, t) => t);
  const threadOf = pairs.map((k) => k % threads.length);
  const none = (n: number): (number | undefined)[] => Array.from({ length: n }, (): number | undefined => undefined);
  if (name === 'none' || cpus < 2) return { name: 'none', threadOf, vcpuCpus: none(queues), ioCpus: none(threads.length), generatorCpus: none(queues), loopCpus: none(queues) };
  const down = (k: number): number => (((cpus - 1 - k) % cpus) + cpus) % cpus;
  if (name === 'split') {
    // vCPUs on the CPUs no I/O thread has (fewer I/O threads than pairs leave more of those), round-robin.
    const ioCpus = threads.map(down);
    const free = Array.from({ length: cpus }, (_, c) => c).filter((c) => !ioCpus.includes(c));
    const vcpuCpus = pairs.map((k) => (free.length ? free[k % free.length]! : k % cpus));
    return { name, threadOf, vcpuCpus, ioCpus, loopCpus: pairs.map(down), generatorCpus: none(queues) };
  }
  const spare = cpus - queues;
  return {
    name,
    threadOf,
    vcpuCpus: pairs.map(down),
    ioCpus: threads.map(down),
    loopCpus: pairs.map(down),
    generatorCpus: pairs.map((k) => (spare > 0 ? k % spare : undefined)),
    vcpuNice: SHARED_CPU_POLICY.vcpuNice,
    pollUs: SHARED_CPU_POLICY.pollUs,
    coalesceUs: SHARED_CPU_POLICY.coalesceUs,
  };
}

/** The `xdpvm run` options that carry a placement (the vCPU side) and the device properties (the I/O side). */
export function placementRunArgs(p: PmdPlacement): { args: string[]; deviceProps: string } {
  const list = (xs: (number | undefined)[]): string | undefined => (xs.every((x) => x !== undefined) && xs.length ? xs.join(':') : undefined);
  const vcpus = list(p.vcpuCpus);
  const io = list(p.ioCpus);
  const args = [...(vcpus ? ['-vcpu-cpus', vcpus] : []), ...(p.vcpuNice !== undefined ? ['-vcpu-nice', String(p.vcpuNice)] : [])];
  const shared = p.threadOf.some((t, k) => t !== k);
  const props = [
    ...(shared ? [`iothread-vq-mapping=${p.threadOf.join(':')}`] : []),
    ...(io ? [`io-cpus=${io}`] : []),
    ...(p.pollUs !== undefined ? [`poll-max-ns=${Math.round(p.pollUs * 1000)}`] : []),
    ...(p.coalesceUs !== undefined ? [`coalesce-us=${p.coalesceUs}`] : []),
  ];
  return { args, deviceProps: props.map((x) => `,${x}`).join('') };
}

/** One line for the terminal: which CPU runs what. */
export function describePlacement(p: PmdPlacement): string {
  const s = (xs: (number | undefined)[]): string => xs.map((x) => (x === undefined ? '-' : String(x))).join('/');
  const policy = p.vcpuNice !== undefined ? `, vCPU niceness ${p.vcpuNice}, I/O poll ${p.pollUs} µs, coalesce ${p.coalesceUs} µs` : '';
  return `placement ${p.name}: vCPU CPUs ${s(p.vcpuCpus)}, ${p.ioCpus.length} I/O thread(s) serving pairs ${p.threadOf.map((t, k) => `${k}->${t}`).join(' ')} on CPUs ${s(p.ioCpus)}, C loop CPUs ${s(p.loopCpus)}, generator CPUs ${s(p.generatorCpus)}${policy}`;
}
