// `xdpvm bench backend ...`: runs a benchmark, prints progress and a table,
// saves JSON + SVG, compares with --baseline, and with --json ends with the
// result object on one line.
import { benchBackend } from '../bench/backend-bench';
import { benchDevice, benchDeviceAfXdp, MAX_TSO_FRAME, OFFLOADS, type Offload } from '../bench/device-bench';
import { benchPmd, DEFAULT_PMD_QUEUE_SIZE, pmdBenchUnavailable, type PmdMode } from '../bench/pmd-bench';
import { PMD_PLACEMENTS, type PmdPlacementName } from '../bench/pmd-placement';
import { BENCH_LINUX_USAGE, benchTcpCommand, benchTestpmdCommand } from './bench-linux-command';
import { benchDeviceWorker, benchDeviceWorkerGuestUmem, checkDeviceWorkerOptions, defaultPlacement, DEVICE_QUEUE_SIZES, PEER_NAPI, PLACEMENTS, type DeviceWorkerBenchOptions, type DeviceWorkerMode, type PeerNapi, type Placement } from '../bench/device-worker-bench';
import { compareWithBaseline, fmt, publishResult, subjectName, table, type BenchResult } from '../bench/report';
import { BENCH_FLAGS, parseFlags, publishFlags, UsageError, type Flags } from './args';


export const BENCH_USAGE = `usage: xdpvm bench backend --mode txonly|rxonly [--xdp-mode native|skb] [--seconds S] [--runs N]
                          [--size BYTES] [--batch N] [--json] [--out FILE] [--baseline FILE] [--threshold FRACTION]
       xdpvm bench device [--backend loopback [--offload none|csum|tso] | --backend af-xdp [--guest-umem]] [--xdp-mode native|skb] [--seconds S] [--runs N] [--size BYTES]
                          [--batch N] [--json] [--out FILE] [--baseline FILE] [--threshold FRACTION]
       xdpvm bench device --backend af-xdp --threads [--guest-umem] [--mode txonly|rxonly|io-fwd] [--queues N [--io-threads M]] [--burst N] [--placement split|shared|gen-io|none] [--spin-rounds N] [--poll-us US] [--coalesce-us US] [--driver-nice N] [--peer-napi softirq|threaded] [--peer-xdp native|skb] [--event-idx on|off] [--queue-size 256|512|1024]
                          [--xdp-mode native|skb]
                          [--seconds S] [--runs N] [--size BYTES] [--json] [--out FILE] [--baseline FILE] [--threshold FRACTION]
       xdpvm bench pmd --mode txonly|rxonly|io-fwd [--queues N [--io-threads M]] [--placement shared|split|none] [--size BYTES] [--xdp-mode native|skb] [--seconds S] [--runs N] [--accel kvm|hosted] [--event-idx on|off] [--queue-size 256|512|1024] [--peer-xdp skb|native]
                          [--json] [--out FILE] [--baseline FILE] [--threshold FRACTION]`;

export async function benchCommand(argv: readonly string[]): Promise<number> {
  // Ctrl-C or a kill mid-run: leave through process.exit, whose 'exit' hook removes the namespaces (and with them
  // the veths and XDP programs) the bench made (host/netns.ts); the default action would leave them behind.
  const onSignal = (signal: NodeJS.Signals): void => {
    process.stderr.write(`xdpvm: bench: ${signal}, removing its namespaces\n`);
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    return await runBench(argv);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

async function runBench(argv: readonly string[]): Promise<number> {
  const [what, ...rest] = argv;
  if (what === 'device') return benchDeviceCommand(rest);
  if (what === 'pmd') return benchPmdCommand(rest);
  if (what === 'tcp') return benchTcpCommand(rest);
  if (what === 'testpmd') return benchTestpmdCommand(rest);
  if (what !== 'backend') throw new UsageError(`unknown benchmark '${what ?? ''}'\n${BENCH_USAGE}\n${BENCH_LINUX_USAGE}`);
  const { flags } = parseFlags(rest, {
    ...BENCH_FLAGS,
    mode: { type: 'enum', values: ['txonly', 'rxonly'] },
    'xdp-mode': { type: 'enum', values: ['native', 'skb'] },
    size: { type: 'number', integer: true, min: 60, max: 3500 },
    batch: { type: 'number', integer: true, min: 1, max: 256 },
  });
  if (!flags.mode) throw new UsageError(`--mode is required\n${BENCH_USAGE}`);
  const log = (l: string): void => void process.stderr.write(`${l}\n`);
  const o = {
    mode: flags.mode as 'txonly' | 'rxonly',
    xdpMode: (flags['xdp-mode'] as 'native' | 'skb' | undefined) ?? 'native',
    seconds: (flags.seconds as number | undefined) ?? 3,
    runs: (flags.runs as number | undefined) ?? 5,
    size: (flags.size as number | undefined) ?? 64,
    batch: (flags.batch as number | undefined) ?? 64,
    progress: log,
  };
  log(`bench backend ${o.mode}: ${o.xdpMode} mode, ${o.size} B frames, batch ${o.batch}, ${o.runs} runs x ${o.seconds} s each for TypeScript and raw C`);
  const result = await benchBackend(o);
  return finish(result, flags, log);
}

async function benchDeviceCommand(argv: readonly string[]): Promise<number> {
  const { flags } = parseFlags(argv, {
    ...BENCH_FLAGS,
    backend: { type: 'enum', values: ['loopback', 'af-xdp'] },
    'xdp-mode': { type: 'enum', values: ['native', 'skb'] },
    size: { type: 'number', integer: true, min: 60, max: MAX_TSO_FRAME },
    batch: { type: 'number', integer: true, min: 1, max: 256 },
    threads: { type: 'boolean' },
    mode: { type: 'enum', values: ['txonly', 'rxonly', 'io-fwd'] },
    burst: { type: 'number', integer: true, min: 1, max: 1024 },
    placement: { type: 'enum', values: PLACEMENTS },
    'spin-rounds': { type: 'number', integer: true, min: 0, max: 1e9 },
    'poll-us': { type: 'number', min: 0, max: 1e7 },
    'coalesce-us': { type: 'number', min: 0, max: 1e6 },
    'driver-nice': { type: 'number', integer: true, min: -20, max: 19 },
    'peer-napi': { type: 'enum', values: PEER_NAPI },
    'peer-xdp': { type: 'enum', values: ['native', 'skb'] },
    'event-idx': { type: 'enum', values: ['on', 'off'] },
    'queue-size': { type: 'enum', values: DEVICE_QUEUE_SIZES.map(String) },
    queues: { type: 'number', integer: true, min: 1, max: 8 },
    'io-threads': { type: 'number', integer: true, min: 1, max: 8 },
    offload: { type: 'enum', values: OFFLOADS },
    'guest-umem': { type: 'boolean' },
  });
  const log = (l: string): void => void process.stderr.write(`${l}\n`);
  const o = {
    seconds: (flags.seconds as number | undefined) ?? 3,
    runs: (flags.runs as number | undefined) ?? 5,
    size: (flags.size as number | undefined) ?? 64,
    batch: (flags.batch as number | undefined) ?? 64,
    progress: log,
  };
  if (flags['guest-umem'] && flags.backend !== 'af-xdp') throw new UsageError('--guest-umem needs --backend af-xdp');
  if (flags.threads) {
    if (flags.backend !== 'af-xdp') throw new UsageError('--threads needs --backend af-xdp');
    if (flags.batch !== undefined) throw new UsageError('--threads takes --burst (frames per driver round, as the PMD guest), not --batch');
    const mode = (flags.mode as DeviceWorkerMode | undefined) ?? 'txonly';
    const burst = flags.burst as number | undefined;
    if (o.size > 2048 - 12) throw new UsageError(`--size: at most ${2048 - 12} with --threads (one 2 KiB buffer per frame)`);
    const queueSize = flags['queue-size'] !== undefined ? Number(flags['queue-size']) : undefined;
    const xdpMode = (flags['xdp-mode'] as 'native' | 'skb' | undefined) ?? 'native';
    const placement = (flags.placement as Placement | undefined) ?? defaultPlacement(mode);
    const spin = flags['spin-rounds'] as number | undefined;
    const poll = flags['poll-us'] as number | undefined;
    const coalesce = flags['coalesce-us'] as number | undefined;
    const nice = flags['driver-nice'] as number | undefined;
    const peerNapi = flags['peer-napi'] as PeerNapi | undefined;
    const queues = (flags.queues as number | undefined) ?? 1;
    const ioThreads = (flags['io-threads'] as number | undefined) ?? queues;
    if (ioThreads > queues) throw new UsageError('--io-threads: at most one I/O thread per queue pair (--queues)');
    // guest-umem: the same device run with guest RAM as the UMEM against the copy path, run by run.
    if (flags['guest-umem'] && peerNapi === 'threaded') throw new UsageError('--peer-napi threaded: the --guest-umem comparison keeps the peer in softirq');
    const options: DeviceWorkerBenchOptions = {
      mode, placement, queues, ioThreads, seconds: o.seconds, runs: o.runs, size: o.size, xdpMode, progress: log,
      ...(burst !== undefined ? { burst } : {}),
      ...(spin !== undefined ? { spinRounds: spin } : {}),
      ...(poll !== undefined ? { pollUs: poll } : {}),
      ...(coalesce !== undefined ? { coalesceUs: coalesce } : {}),
      ...(nice !== undefined ? { driverNice: nice } : {}),
      ...(peerNapi !== undefined ? { peerNapi } : {}),
      ...(flags['peer-xdp'] !== undefined ? { peerXdp: flags['peer-xdp'] as 'native' | 'skb' } : {}),
      ...(flags['event-idx'] === 'on' ? { eventIdx: true } : {}),
      ...(queueSize !== undefined ? { queueSize } : {}),
    };
    // Options the bench refuses are refused before anything is printed of the run.
    let checked: ReturnType<typeof checkDeviceWorkerOptions>;
    try {
      checked = checkDeviceWorkerOptions(options);
    } catch (e) {
      throw e instanceof RangeError ? new UsageError(e.message) : e;
    }
    log(`bench device ${mode} (af-xdp, device in its I/O worker, poll-mode driver in this thread): ${o.size} B frames, burst ${checked.burst}, ${checked.queueSize}-entry virtqueues, ${o.runs} runs x ${o.seconds} s`);
    if (queues > 1) log(`  ${queues} queue pairs on ${ioThreads} I/O thread(s); one driver thread serves them all, round-robin`);
    const bench = flags['guest-umem'] ? benchDeviceWorkerGuestUmem : benchDeviceWorker;
    return finish(
      await bench(options),
      flags,
      log,
    );
  }
  const threadFlags = ['mode', 'burst', 'placement', 'spin-rounds', 'poll-us', 'coalesce-us', 'driver-nice', 'peer-napi', 'peer-xdp', 'queues', 'io-threads', 'event-idx', 'queue-size'];
  if (threadFlags.some((f) => flags[f] !== undefined)) throw new UsageError(`${threadFlags.map((f) => `--${f}`).join(', ')} need --backend af-xdp --threads`);
  const backend = (flags.backend as string | undefined) ?? 'loopback';
  const offload = flags.offload as Offload | undefined;
  if (offload !== undefined && (backend !== 'loopback' || flags.threads)) throw new UsageError('--offload is a loopback workload (no --backend af-xdp, no --threads)');
  if (o.size > 3500 && offload !== 'tso') throw new UsageError('--size: at most 3500 (larger frames: --offload tso)');
  log(`bench device (${backend}): ${o.size} B frames, batch ${o.batch}, ${o.runs} runs x ${o.seconds} s`);
  const result =
    backend === 'loopback'
      ? await benchDevice({ ...o, ...(offload ? { offload } : {}) })
      : await benchDeviceAfXdp({ ...o, xdpMode: (flags['xdp-mode'] as 'native' | 'skb' | undefined) ?? 'native', guestUmem: flags['guest-umem'] === true });
  return finish(result, flags, log);
}

async function benchPmdCommand(argv: readonly string[]): Promise<number> {
  const { flags } = parseFlags(argv, {
    ...BENCH_FLAGS,
    mode: { type: 'enum', values: ['txonly', 'rxonly', 'io-fwd'] },
    queues: { type: 'number', integer: true, min: 1, max: 16 },
    size: { type: 'number', integer: true, min: 60, max: 1514 },
    'xdp-mode': { type: 'enum', values: ['native', 'skb'] },
    placement: { type: 'enum', values: PMD_PLACEMENTS },
    'io-threads': { type: 'number', integer: true, min: 1, max: 16 },
    accel: { type: 'enum', values: ['kvm', 'hosted'] },
    'event-idx': { type: 'enum', values: ['on', 'off'] },
    'queue-size': { type: 'enum', values: ['256', '512', '1024'] },
    'peer-xdp': { type: 'enum', values: ['native', 'skb'] },
  });
  if (!flags.mode) throw new UsageError(`--mode is required\n${BENCH_USAGE}`);
  if (flags['io-threads'] !== undefined && (flags['io-threads'] as number) > ((flags.queues as number | undefined) ?? 1))
    throw new UsageError('--io-threads: at most one I/O thread per queue pair (--queues)');
  const hosted = flags.accel === 'hosted';
  const why = hosted ? undefined : pmdBenchUnavailable();
  if (why) throw new UsageError(`bench pmd boots the PMD guest under KVM: ${why} (--accel hosted runs its hosted build instead)`);
  const log = (l: string): void => void process.stderr.write(`${l}\n`);
  const o = {
    mode: flags.mode as PmdMode,
    queues: (flags.queues as number | undefined) ?? 1,
    size: (flags.size as number | undefined) ?? 64,
    xdpMode: (flags['xdp-mode'] as 'native' | 'skb' | undefined) ?? 'native',
    seconds: (flags.seconds as number | undefined) ?? 3,
    runs: (flags.runs as number | undefined) ?? 3,
    progress: log,
    ...(flags.placement !== undefined ? { placement: flags.placement as PmdPlacementName } : {}),
    ...(flags['io-threads'] !== undefined ? { ioThreads: flags['io-threads'] as number } : {}),
    ...(hosted ? { accel: 'hosted' as const } : {}),
    ...(flags['event-idx'] === 'on' ? { eventIdx: true } : {}),
    queueSize: Number((flags['queue-size'] as string | undefined) ?? DEFAULT_PMD_QUEUE_SIZE),
    ...(flags['peer-xdp'] !== undefined ? { peerXdp: flags['peer-xdp'] as 'native' | 'skb' } : {}),
  };
  log(`bench pmd ${o.mode}: PMD guest${hosted ? ' (hosted vCPU)' : ''} under xdpvm run, ${o.queues} queue pair(s) and vCPU(s), ${o.size} B frames, ${o.queueSize}-entry virtqueues, ${o.xdpMode} XDP, the peer counting in ${o.peerXdp ?? 'skb'} mode, ${o.runs} runs x ${o.seconds} s, against raw C on the same veth pair`);
  const result = await benchPmd(o);
  const first = result.params.bootToFirstPacketMs as { median: number; min: number; max: number } | null;
  if (first) log(`spawn of the VMM to the first frame at the peer: median ${first.median.toFixed(0)} ms (min ${first.min.toFixed(0)}, max ${first.max.toFixed(0)})`);
  return finish(result, flags, log);
}

function finish(result: BenchResult, flags: Flags, log: (l: string) => void): number {
  const runs = result.runs as Array<Record<string, number>>;
  const sb = result.secondBaseline;
  log('');
  log(
    table(
      ['', 'Mpps median', 'min', 'max', 'packets (this end)', 'packets (other end)'],
      [
        [subjectName(result), fmt(result.mpps.median), fmt(result.mpps.min), fmt(result.mpps.max),
          String(runs.reduce((s, r) => s + (r.packets ?? 0), 0)), String(runs.reduce((s, r) => s + (r.peerPackets ?? 0), 0))],
        [result.baseline.name, fmt(result.baseline.mpps.median), fmt(result.baseline.mpps.min), fmt(result.baseline.mpps.max),
          String(runs.reduce((s, r) => s + (r.baselinePackets ?? 0), 0)), String(runs.reduce((s, r) => s + (r.baselinePeerPackets ?? 0), 0))],
        ...(sb ? [[sb.name, fmt(sb.mpps.median), fmt(sb.mpps.min), fmt(sb.mpps.max), String(sb.packets), String(sb.peerPackets)]] : []),
      ],
    ),
  );
  const rr = result.runRatios;
  const who = result.subject ?? 'TypeScript';
  if (rr)
    log(
      `ratio ${who} / ${result.baseline.name}: ${fmt(result.ratio)} (median of the per-run ratios, min ${fmt(rr.min)}, max ${fmt(rr.max)}; ` +
        `ratio of the medians ${fmt(rr.ofMedians)})`,
    );
  else log(`ratio ${who} / ${result.baseline.name}: ${fmt(result.ratio)}`);
  if (sb)
    log(
      `ratio ${who} / ${sb.name}: ${fmt(sb.ratio)} (median of the per-run ratios, min ${fmt(sb.runRatios.min)}, max ${fmt(sb.runRatios.max)}; ` +
        `ratio of the medians ${fmt(sb.runRatios.ofMedians)})`,
    );
  if (sb?.ofBaseline)
    log(
      `${sb.name} / ${result.baseline.name}: ${fmt(sb.ofBaseline.median)} (median of the per-run ratios, min ${fmt(sb.ofBaseline.min)}, max ${fmt(sb.ofBaseline.max)}): ` +
        `what the C loop itself keeps of its receive rate when it forwards`,
    );
  const bt = result.bootTimelineMs;
  if (bt && Object.keys(bt).length) {
    log('');
    log(`boot timeline, ms from the VMM's process start (over ${runs.length} runs):`);
    log(table(['phase', 'median', 'min', 'max'], Object.entries(bt).map(([p, s]) => [p, fmt(s.median, 1), fmt(s.min, 1), fmt(s.max, 1)])));
  }
  const cr = result.cpuRatio;
  if (cr) log(`CPU time per frame, ${result.baseline.name} / I/O worker: ${fmt(cr.median)} (median, min ${fmt(cr.min)}, max ${fmt(cr.max)})`);
  const pm = result.perMillion;
  if (pm) {
    const keys = Object.keys(pm);
    log('');
    log(`per million frames (median over the runs):`);
    log(table(keys, [keys.map((k) => fmt(pm[k]!, 1))]));
  }
  return publishResult(result, { ...publishFlags(flags), compare: compareWithBaseline, log });
}
