// `xdpvm bench pmd --mode txonly|rxonly|io-fwd`: the PMD test guest booted
// by `xdpvm run` on one end of a veth pair, the peer end counting (an XDP
// counter) and generating (the raw C XSK loop), then the raw C loop in the
// guest's place on the same pair, alternating run by run. Counts at both
// ends. Every guest run passes -timeline: the VMM's boot phases, and the
// first frame at the peer (dated by the peer's XDP program on the same clock),
// all in ms from the VMM process's start.
// Baselines: txonly and rxonly against the C loop doing the same; io-fwd
// against the C receive loop (the C code has no forwarding loop, so that
// ratio is an upper bound on what forwarding costs).
import { setTimeout as sleep } from 'node:timers/promises';
import type { BenchRunOptions } from './bench-run-options';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { inNetns, VethPair } from '../host/netns';
import { xsk } from '../native/xsk';
import { bootToFirstTxSeconds } from './pmd-result';
import { PmdVm } from './pmd-vm';
import { resultHeader, type BenchResult } from './report';
import { formatPerMillion, medianPerMillion, parseVmmCounters, perMillion, sumPairs, type PerMillion } from './per-million';
import { pairedRatio, summarize, type Summary } from './stats';
import type { ThreadCpu } from '../host/cpu-affinity';
import { IO_THREAD_NAME, VCPU_THREAD_NAME } from '../host/thread-names';
import { ALL_PHASES, type BootPhase, type BootTimelineJson } from '../vmm/boot-timeline';
import { XdpCounter } from './xdp-counter';
import { defaultPmdIoThreads, defaultPmdPlacement, describePlacement, placementRunArgs, pmdPlacement, type PmdPlacement, type PmdPlacementName } from './pmd-placement';
import { runCReceivers, runEndpoint, type EndpointParams, type EndpointResult } from './xsk-endpoint';
import { SERVICE_BUDGET } from '../virtio/net/queue-pair';

export type PmdMode = 'txonly' | 'rxonly' | 'io-fwd';

export interface PmdBenchOptions extends BenchRunOptions {
  mode: PmdMode;
  queues: number;
  /** I/O threads serving the pairs (default one per pair; fewer: pairs round-robin over them). */
  ioThreads?: number;
  /** Default defaultPmdPlacement(mode). */
  placement?: PmdPlacementName;
  /** kvm (default), or hosted: the PMD's hosted build as the vCPU process (`xdpvm run -accel hosted`), for hosts without /dev/kvm. */
  accel?: 'kvm' | 'hosted';
  /** The guest negotiates VIRTIO_F_EVENT_IDX (its event_idx=1; default off, as DPDK's virtio PMD). */
  eventIdx?: boolean;
  /** The device's rx_queue_size / tx_queue_size (default DEFAULT_PMD_QUEUE_SIZE); the guest takes the device's size, as Linux and DPDK do. */
  queueSize?: number;
  /**
   * The mode of the peer's counting XDP program (default skb). The peer receives on the sender's CPU, so this
   * moves both sides' figures and the ratio (README: raw C txonly 2.73 Mpps against skb, 2.36 against native).
   */
  peerXdp?: 'native' | 'skb';
}

/**
 * 1024 as QEMU users set for throughput (QEMU's default is 256): on a shared CPU the receive side alternates
 * between the I/O thread filling every posted buffer and the guest refilling, and each turn costs a kick and a
 * wake-up, so the turns must be long (measured on PVM: rxonly 0.96 Mpps at 256, 1.96 at 1024; kicks per Mframe
 * 4.3k and 0.2-0.3k).
 */
export const DEFAULT_PMD_QUEUE_SIZE = 1024;

const queueSize = (o: PmdBenchOptions): number => o.queueSize ?? DEFAULT_PMD_QUEUE_SIZE;

/** Why this host cannot run the benchmark, or undefined. */
export function pmdBenchUnavailable(): string | undefined {
  try {
    closeSync(openSync('/dev/kvm', 'r+'));
    return undefined;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    return `/dev/kvm: ${code} (a host that is itself a PVM guest has none; scripts/kvm-in-tcg.sh gives a functional, emulated run)`;
  }
}

/** True inside QEMU's software CPU (the TCG harness): figures then measure the emulator. */
export function emulatedCpu(): boolean {
  try {
    return /QEMU TCG|TCG CPU/.test(readFileSync('/proc/cpuinfo', 'utf8'));
  } catch {
    return false;
  }
}

interface GuestRun {
  mpps: number;
  packets: number;
  peerPackets: number;
  seconds: number;
  /** From this process spawning the VMM (`ip netns exec` included) to the first frame at the peer. */
  bootToFirstPacketMs: number | undefined;
  /** The VMM's boot timeline: ms from its process start to each phase, and to the first frame at the peer. */
  timeline: PmdBootTimeline | undefined;
  guestBootToFirstTxMs: number | undefined;
  /** Per million frames over the whole guest run (boot included): the guest's kicks, the VMM's counters. */
  perMillion: PerMillion | undefined;
  /** Each queue pair's rate, as the guest counted it. */
  queueMpps: number[];
  /** CPU time of the VMM's vCPU and I/O threads over the whole run (boot included) per frame moved, ns. */
  cpuNsPerFrame: ThreadsPerFrame | undefined;
}

interface ThreadsPerFrame {
  vcpu: number;
  io: number;
}

/** The named threads' CPU time per frame; undefined when the VMM reported none (hosted vCPUs are processes). */
function threadsPerFrame(threads: readonly ThreadCpu[] | undefined, frames: number): ThreadsPerFrame | undefined {
  if (!threads || frames <= 0) return undefined;
  const sum = (prefix: string): number => threads.filter((t) => t.name.startsWith(prefix)).reduce((a, t) => a + t.runNs, 0);
  const vcpu = sum(VCPU_THREAD_NAME);
  const io = sum(IO_THREAD_NAME);
  return vcpu > 0 && io > 0 ? { vcpu: vcpu / frames, io: io / frames } : undefined;
}

/** Phases of `xdpvm run -timeline` and firstFrameAtPeer, ms from the VMM process's start. */
export type PmdBootTimeline = Partial<Record<BootPhase | 'firstFrameAtPeer', number>>;

function bootPhases(t: BootTimelineJson, peerFirstMs: number | undefined): PmdBootTimeline {
  const out: PmdBootTimeline = {};
  for (const p of ALL_PHASES) if (t[p] !== undefined) out[p] = t[p];
  if (peerFirstMs !== undefined) out.firstFrameAtPeer = Math.round((peerFirstMs - t.origin.monotonicMs) * 10) / 10;
  return out;
}

/** Per phase (the timeline's order, then firstFrameAtPeer), its median, min and max over the runs that reached it. */
export function summarizeTimelines(runs: readonly (PmdBootTimeline | undefined)[]): Partial<Record<keyof PmdBootTimeline, Summary>> {
  const out: Partial<Record<keyof PmdBootTimeline, Summary>> = {};
  for (const p of [...ALL_PHASES, 'firstFrameAtPeer'] as const) {
    const v = runs.map((r) => r?.[p]).filter((x): x is number => x !== undefined);
    if (v.length) out[p] = summarize(v);
  }
  return out;
}

interface BaselineRun {
  /** Each queue's C loop. */
  queueMpps: number[];
  /** The C loops' CPU time per frame, ns (NaN when a loop did not report it). */
  cpuNsPerFrame: number;
  mpps: number;
  packets: number;
  peerPackets: number;
  seconds: number;
}

/** ", per queue a / b Mpps" when there is more than one queue. */
function perQueue(mpps: number[]): string {
  return mpps.length > 1 ? `, per queue ${mpps.map((m) => m.toFixed(3)).join(' / ')} Mpps` : '';
}

function endpoints(pair: VethPair, o: PmdBenchOptions, place: PmdPlacement, side: 'a' | 'b', direction: 'tx' | 'rx', seconds: number): Promise<EndpointResult[]> {
  const end = side === 'a' ? pair.a : pair.b;
  const ps = Array.from({ length: o.queues }, (_, q): EndpointParams => {
    // Side b generates (the peer, in the PMD's bursts); side a is the C loop in the guest's place, with the
    // device's batch: what one service round moves and sends per kick (SERVICE_BUDGET).
    const cpu = (side === 'b' ? place.generatorCpus : place.loopCpus)[q];
    const batch = side === 'a' ? SERVICE_BUDGET : 32;
    return { netns: end.netns, ifname: end.ifname, impl: 'c', direction, xdpMode: o.xdpMode, seconds, size: o.size, batch, queue: q, ...(cpu !== undefined ? { cpu } : {}) };
  });
  // Receivers share one XDP program (an interface takes one).
  return direction === 'rx' ? runCReceivers(ps) : Promise.all(ps.map((p) => runEndpoint(p, `C ${direction} queue ${p.queue}`)));
}

async function guestRun(pair: VethPair, o: PmdBenchOptions, place: PmdPlacement, counter: XdpCounter): Promise<GuestRun> {
  const before = counter.total();
  // Nothing reaches the peer between runs: its first-frame times can be cleared without losing a count.
  counter.resetFirst();
  const generate = o.mode !== 'txonly';
  // The generator starts first and outlives the guest's measured window (boot included).
  // (The C loop cannot be stopped early: it runs for boot + the window + a margin.)
  const gen = generate ? endpoints(pair, o, place, 'b', 'tx', o.seconds + 8) : undefined;
  const run = placementRunArgs(place);
  const vm = PmdVm.start({
    netns: pair.a.netns, ifname: pair.a.ifname, cpus: o.queues, queues: o.queues, xdpMode: o.xdpMode,
    append: `mode=${o.mode} size=${o.size} seconds=${o.seconds} queues=${o.queues} burst=32${o.eventIdx ? ' event_idx=1' : ''}`,
    timeline: true,
    ...(o.accel === 'hosted' ? { accel: 'hosted' as const } : {}),
    timeoutMs: (o.seconds + 120) * 1000,
    runArgs: run.args,
    deviceProps: `${run.deviceProps},rx_queue_size=${queueSize(o)},tx_queue_size=${queueSize(o)}`,
  });
  const e = await vm.exited;
  if (gen) await gen.catch(() => undefined);
  if (e.code !== 0 || !e.result) {
    throw new Error(`the PMD guest run failed (exit ${e.code ?? e.signal}${e.timedOut ? ', timed out' : ''}):\n${e.console.slice(-2000)}\n${e.stderr.slice(-2000)}`);
  }
  const r = e.result;
  const guestPackets = o.mode === 'rxonly' ? r.rx_packets : r.tx_packets;
  const peerPackets = o.mode === 'rxonly' ? (await gen!).reduce((s, x) => s + x.packets, 0) : counter.total() - before;
  const guestFirst = bootToFirstTxSeconds(r);
  const vmm = parseVmmCounters(e.stderr);
  // The peer's XDP program dated the first frame on CLOCK_MONOTONIC, the clock of the VMM's timeline and of the spawn.
  const peerFirst = o.mode === 'rxonly' ? undefined : counter.firstFrameMs();
  const timeline = e.timeline ? bootPhases(e.timeline, peerFirst) : undefined;
  const kicks = { tx: r.per_queue.reduce((sum, q) => sum + q.tx_kicks, 0), rx: r.per_queue.reduce((sum, q) => sum + q.rx_kicks, 0) };
  const summed = vmm ? sumPairs(vmm.nets.flatMap((n) => n.pairs)) : undefined;
  return {
    perMillion: summed ? perMillion(guestPackets, kicks, summed.counters, summed.kernel) : undefined,
    mpps: guestPackets / r.seconds / 1e6,
    queueMpps: r.per_queue.map((q) => (o.mode === 'rxonly' ? q.rx_packets : q.tx_packets) / r.seconds / 1e6),
    packets: guestPackets,
    peerPackets,
    seconds: r.seconds,
    bootToFirstPacketMs: peerFirst === undefined ? undefined : peerFirst - e.spawnedAtMs,
    timeline,
    guestBootToFirstTxMs: guestFirst === undefined ? undefined : guestFirst * 1000,
    cpuNsPerFrame: threadsPerFrame(vmm?.threads, guestPackets),
  };
}

function loopCpuPerFrame(res: readonly EndpointResult[], packets: number): number {
  return (res.reduce((a, x) => a + (x.cpuSeconds ?? NaN), 0) * 1e9) / Math.max(1, packets);
}

async function baselineRun(pair: VethPair, o: PmdBenchOptions, place: PmdPlacement, counter: XdpCounter): Promise<BaselineRun> {
  if (o.mode === 'txonly') {
    const before = counter.total();
    const res = await endpoints(pair, o, place, 'a', 'tx', o.seconds);
    await sleep(50);
    const packets = res.reduce((s, x) => s + x.packets, 0);
    const seconds = Math.max(...res.map((x) => x.seconds));
    return { mpps: packets / seconds / 1e6, queueMpps: res.map((x) => x.packets / x.seconds / 1e6), packets, peerPackets: counter.total() - before, seconds, cpuNsPerFrame: loopCpuPerFrame(res, packets) };
  }
  const gen = endpoints(pair, o, place, 'b', 'tx', o.seconds + 1.5);
  await sleep(400);
  const res = await endpoints(pair, o, place, 'a', 'rx', o.seconds);
  const sent = (await gen).reduce((s, x) => s + x.packets, 0);
  const packets = res.reduce((s, x) => s + x.packets, 0);
  const seconds = Math.max(...res.map((x) => x.seconds));
  return { mpps: packets / seconds / 1e6, queueMpps: res.map((x) => x.packets / x.seconds / 1e6), packets, peerPackets: sent, seconds, cpuNsPerFrame: loopCpuPerFrame(res, packets) };
}

export async function benchPmd(o: PmdBenchOptions): Promise<BenchResult> {
  const hosted = o.accel === 'hosted';
  const why = hosted ? undefined : pmdBenchUnavailable();
  if (why) throw new Error(`bench pmd needs KVM: ${why}`);
  if (hosted) o.progress('  hosted vCPU: the PMD driver runs as a process (-accel hosted); its port and MMIO accesses are relayed, not KVM exits');
  const emulated = emulatedCpu();
  if (emulated) o.progress('  NOTE: this CPU is QEMU TCG (the nested-KVM harness): every figure below measures the emulator, not xdpvm');
  const placement = o.placement ?? defaultPmdPlacement(o.mode);
  const place = pmdPlacement(placement, o.queues, undefined, o.ioThreads ?? defaultPmdIoThreads(placement, o.queues));
  o.progress(`  ${describePlacement(place)}`);
  const pair = new VethPair('pmd', { queues: o.queues });
  const guest: GuestRun[] = [];
  const base: BaselineRun[] = [];
  // Several pairs: one pair in the same runs too, for the scaling ratio (the same placement for one pair).
  const onePair = o.queues > 1 ? { o: { ...o, queues: 1 }, place: pmdPlacement(placement, 1, undefined, defaultPmdIoThreads(placement, 1)) } : undefined;
  const single: GuestRun[] = [];
  let counter: XdpCounter | undefined;
  try {
    counter = inNetns(pair.b.netns, () => XdpCounter.attach(xsk.ifNameToIndex(pair.b.ifname), o.peerXdp ?? 'skb'));
    for (let r = 0; r < o.runs; r++) {
      const order = r % 2 === 0 ? (['guest', 'c', 'one'] as const) : (['one', 'c', 'guest'] as const);
      for (const which of order) {
        if (which === 'one') {
          if (!onePair) continue;
          const g = await guestRun(pair, onePair.o, onePair.place, counter);
          single.push(g);
          o.progress(`  run ${r + 1}/${o.runs} one pair : ${g.mpps.toFixed(3)} Mpps (${describePlacement(onePair.place)})`);
        } else if (which === 'guest') {
          const g = await guestRun(pair, o, place, counter);
          guest.push(g);
          o.progress(
            `  run ${r + 1}/${o.runs} PMD guest: ${g.mpps.toFixed(3)} Mpps, guest ${o.mode === 'rxonly' ? 'received' : 'sent'} ${g.packets}, ` +
              `peer ${o.mode === 'rxonly' ? 'sent' : 'counted'} ${g.peerPackets}${perQueue(g.queueMpps)}, first frame at the peer ${g.timeline?.firstFrameAtPeer?.toFixed(0) ?? '-'} ms after the VMM's start (${g.bootToFirstPacketMs?.toFixed(0) ?? '-'} after its spawn)` +
              (g.cpuNsPerFrame ? `; CPU/frame vCPU ${g.cpuNsPerFrame.vcpu.toFixed(0)} ns, I/O thread ${g.cpuNsPerFrame.io.toFixed(0)} ns` : '') +
              (g.perMillion ? `; per Mframe: ${formatPerMillion(g.perMillion)}` : '; (no counters line from the VMM)'),
          );
        } else {
          const b = await baselineRun(pair, o, place, counter);
          base.push(b);
          o.progress(`  run ${r + 1}/${o.runs} raw C    : ${b.mpps.toFixed(3)} Mpps, ${b.packets} packets, peer ${b.peerPackets}${perQueue(b.queueMpps)}; CPU/frame ${b.cpuNsPerFrame.toFixed(0)} ns`);
        }
        await sleep(300);
      }
    }
  } finally {
    counter?.close();
    pair.remove();
  }
  const mpps = summarize(guest.map((g) => g.mpps));
  const scaling = single.length ? pairedRatio(guest.map((g, i) => ({ mpps: g.mpps, baselineMpps: single[i]!.mpps }))) : undefined;
  if (scaling) {
    o.progress(`  ${o.queues} pairs / one pair, same runs: ${scaling.ratio.toFixed(3)} (min ${scaling.runRatios.min.toFixed(3)}, max ${scaling.runRatios.max.toFixed(3)}); ` +
      `${o.queues} pairs max/min over the runs ${(mpps.max / mpps.min).toFixed(2)}`);
  }
  const baseMpps = summarize(base.map((b) => b.mpps));
  const firsts = guest.map((g) => g.bootToFirstPacketMs).filter((x): x is number => x !== undefined);
  const perRuns = guest.map((g) => g.perMillion).filter((x): x is PerMillion => x !== undefined);
  return {
    ...resultHeader(),
    benchmark: 'pmd',
    workload: o.mode,
    ...(hosted ? { subject: 'PMD guest (hosted vCPU)' } : {}),
    params: {
      accel: hosted ? 'hosted' : 'kvm',
      eventIdx: o.eventIdx === true,
      queueSize: queueSize(o),
      peerXdpMode: o.peerXdp ?? 'skb',
      xdpMode: o.xdpMode, queues: o.queues, vcpus: o.queues, ioThreads: place.ioCpus.length, size: o.size, seconds: o.seconds, runs: o.runs, burst: 32,
      emulated, bootToFirstPacketMs: firsts.length ? summarize(firsts) : null,
      placement: place,
    },
    bootTimelineMs: summarizeTimelines(guest.map((g) => g.timeline)),
    mpps,
    baseline: { name: o.mode === 'io-fwd' ? 'raw C rx' : 'raw C', mpps: baseMpps },
    // Each run measures both sides back to back: the median of the per-run ratios is the headline.
    ...pairedRatio(guest.map((g, i) => ({ mpps: g.mpps, baselineMpps: base[i]!.mpps }))),
    ...(perRuns.length ? { perMillion: medianPerMillion(perRuns) } : {}),
    ...(scaling ? { scaling: { onePairMpps: summarize(single.map((g) => g.mpps)), ...scaling, spread: mpps.max / mpps.min } } : {}),
    runs: guest.map((g, i) => ({
      perMillion: g.perMillion ?? null,
      cpuNsPerFrame: g.cpuNsPerFrame ?? null,
      run: i + 1,
      mpps: g.mpps,
      packets: g.packets,
      peerPackets: g.peerPackets,
      seconds: g.seconds,
      queueMpps: g.queueMpps,
      baselineQueueMpps: base[i]!.queueMpps,
      bootToFirstPacketMs: g.bootToFirstPacketMs ?? null,
      bootTimelineMs: g.timeline ?? null,
      guestBootToFirstTxMs: g.guestBootToFirstTxMs ?? null,
      baselineMpps: base[i]!.mpps,
      baselinePackets: base[i]!.packets,
      baselinePeerPackets: base[i]!.peerPackets,
      baselineSeconds: base[i]!.seconds,
      baselineCpuNsPerFrame: Number.isFinite(base[i]!.cpuNsPerFrame) ? base[i]!.cpuNsPerFrame : null,
    })),
  };
}
