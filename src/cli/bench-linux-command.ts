// `xdpvm bench tcp` and `xdpvm bench testpmd`: the Linux-guest benchmarks.
// Progress and the table go to stderr; JSON + SVG are saved; --baseline FILE
// compares with an earlier result (exit 3 on a regression); with --json the
// result object is the last line on stdout.
import { benchTcp, TCP_BENCHMARK, type Compare, type TcpBenchResult } from '../bench/linux-tcp-bench';
import { benchTestpmd, TESTPMD_BENCHMARK, TESTPMD_MODES, type TestpmdBenchResult, type TestpmdMode } from '../bench/linux-testpmd-bench';
import { chooseEngine, cleanUpOnSignals, EngineError, ENGINES, type Engine } from '../bench/linux-guest-rig';
import { barChart, fmt, publishResult, table, type BenchResult, type Comparison } from '../bench/report';
import { BENCH_FLAGS, parseFlags, publishFlags, UsageError, type FlagSpec, type Flags } from './args';
import { readFileSync } from 'node:fs';
import path from 'node:path';


const LINUX: Record<string, FlagSpec> = {
  ...BENCH_FLAGS,
  engine: { type: 'enum', values: ENGINES },
  compare: { type: 'enum', values: ['qemu-tap', 'none'] },
  'image-dir': { type: 'string' },
};

export const BENCH_LINUX_USAGE = `usage: xdpvm bench tcp [--engine qemu-tcg|kvm] [--compare qemu-tap|none] [--image-dir DIR] [--seconds S] [--runs N]
                      [--json] [--out FILE] [--baseline FILE] [--threshold FRACTION]
       xdpvm bench testpmd --mode txonly|rxonly|io [--engine qemu-tcg|kvm] [--compare qemu-tap|none] [--image-dir DIR]
                      [--seconds S] [--runs N] [--json] [--out FILE] [--baseline FILE] [--threshold FRACTION]
  A Linux guest (xdpvm image build) with our virtio-net device on a veth pair: iperf3 both ways against the peer,
  or dpdk-testpmd against the peer's XDP counter / XSK generator. --engine defaults to kvm where Linux can boot
  under it, else qemu-tcg (our vhost-user server as the NIC); --compare qemu-tap also runs the same guest on QEMU's
  tap backend in the same run (the ratio's baseline).`;

const log = (l: string): void => void process.stderr.write(`${l}\n`);

function common(flags: Flags): { seconds: number; runs: number; engine?: Engine; compare: Compare; imageDir?: string } {
  return {
    seconds: (flags.seconds as number | undefined) ?? 5,
    runs: (flags.runs as number | undefined) ?? 3,
    ...(flags.engine !== undefined ? { engine: flags.engine as Engine } : {}),
    compare: (flags.compare as Compare | undefined) ?? 'qemu-tap',
    ...(flags['image-dir'] !== undefined ? { imageDir: path.resolve(flags['image-dir'] as string) } : {}),
  };
}

/** Checks the engine before anything is set up: a problem there is the user's to fix (exit 2 with the reason). */
function checkEngine(engine: Engine | undefined): void {
  try {
    chooseEngine(engine);
  } catch (e) {
    if (e instanceof EngineError) throw new UsageError(e.message);
    throw e;
  }
}

/** Runs a benchmark with the namespaces and children cleaned up on SIGINT/SIGTERM too. */
async function withCleanUp<T>(fn: () => Promise<T>): Promise<T> {
  const off = cleanUpOnSignals();
  try {
    return await fn();
  } finally {
    off();
  }
}

export async function benchTcpCommand(argv: readonly string[]): Promise<number> {
  const { flags, rest } = parseFlags(argv, LINUX);
  if (rest.length) throw new UsageError(`unexpected argument '${rest[0]}'\n${BENCH_LINUX_USAGE}`);
  const o = common(flags);
  checkEngine(o.engine);
  if (flags.baseline) readBaseline(flags.baseline as string, TCP_BENCHMARK, 'tcp');
  log(`bench tcp: iperf3 guest <-> peer, ${o.runs} runs x ${o.seconds} s each way${o.compare === 'qemu-tap' ? ', with QEMU tap as the baseline' : ''}`);
  const result = await withCleanUp(() => benchTcp({ ...o, progress: log }));
  type Side = 'fwd' | 'rev' | 'baselineFwd' | 'baselineRev';
  type Field = 'senderBytes' | 'receiverBytes' | 'deviceBytes' | 'peerBytes';
  const runs = result.runs as Array<Partial<Record<Side, Partial<Record<Field, number>>>>>;
  const sum = (side: Side, f: Field): string => {
    const vals = runs.map((r) => r[side]?.[f]).filter((v): v is number => v !== undefined);
    return vals.length ? String(vals.reduce((a, b) => a + b, 0)) : '-';
  };
  const row = (name: string, g: { median: number; min: number; max: number }, side: Side): string[] => [
    name, fmt(g.median), fmt(g.min), fmt(g.max), sum(side, 'senderBytes'), sum(side, 'receiverBytes'), sum(side, 'deviceBytes'), sum(side, 'peerBytes'),
  ];
  const rows = [row(`${result.engine} guest -> peer`, result.gbps, 'fwd'), row(`${result.engine} peer -> guest`, result.gbpsReverse, 'rev')];
  if (result.baseline.name !== 'none') {
    rows.push(row(`${result.baseline.name} guest -> peer`, result.baseline.gbps, 'baselineFwd'));
    rows.push(row(`${result.baseline.name} peer -> guest`, result.baseline.gbpsReverse, 'baselineRev'));
  }
  log('');
  log(table(['', 'Gbit/s median', 'min', 'max', 'iperf3 sender B', 'iperf3 receiver B', 'device B', 'peer link B'], rows));
  return finish(result, flags, () => gbpsChart(result));
}

export async function benchTestpmdCommand(argv: readonly string[]): Promise<number> {
  const { flags, rest } = parseFlags(argv, { ...LINUX, mode: { type: 'enum', values: TESTPMD_MODES } });
  if (rest.length) throw new UsageError(`unexpected argument '${rest[0]}'\n${BENCH_LINUX_USAGE}`);
  if (!flags.mode) throw new UsageError(`--mode is required\n${BENCH_LINUX_USAGE}`);
  const mode = flags.mode as TestpmdMode;
  const o = common(flags);
  checkEngine(o.engine);
  if (flags.baseline) readBaseline(flags.baseline as string, TESTPMD_BENCHMARK, mode);
  log(`bench testpmd ${mode}: ${o.runs} runs x ${o.seconds} s forwarding window${o.compare === 'qemu-tap' ? ', with QEMU tap as the baseline' : ''}`);
  const result = await withCleanUp(() => benchTestpmd({ ...o, mode, progress: log }));
  const runs = result.runs as Array<Record<string, number | undefined>>;
  const total = (k: string): string => String(runs.reduce((s, r) => s + (r[k] ?? 0), 0));
  const rows = [[`${result.engine} ${result.mode}`, fmt(result.mpps.median, 4), fmt(result.mpps.min, 4), fmt(result.mpps.max, 4), total('packets'), total('peerPackets')]];
  if (result.baseline.name !== 'none') {
    const b = result.baseline.mpps;
    rows.push([result.baseline.name, fmt(b.median, 4), fmt(b.min, 4), fmt(b.max, 4), total('baselinePackets'), total('baselinePeerPackets')]);
  }
  log('');
  log(table(['', 'Mpps median', 'min', 'max', 'packets (guest testpmd)', `packets (peer ${mode === 'rxonly' ? 'sent' : 'counted'})`], rows));
  return finish(result, flags);
}

/**
 * TCP's chart is of Gbit/s: its packet rate is not comparable between the two NICs (QEMU's tap hands the
 * peer TSO super-packets; AF_XDP carries wire-sized frames).
 */
function gbpsChart(r: TcpBenchResult): string {
  const runs = r.runs as Array<{ gbps?: number; baselineGbps?: number }>;
  return barChart({
    ...r,
    mpps: r.gbps,
    baseline: { name: r.baseline.name, mpps: r.baseline.gbps },
    runs: runs.map((x) => ({ mpps: x.gbps ?? 0, baselineMpps: x.baselineGbps ?? 0 })),
  }).replace(/Mpps/g, 'Gbit/s (guest -> peer)');
}

function finish(result: TcpBenchResult | TestpmdBenchResult, flags: Flags, chart?: () => string): number {
  if (Number.isFinite(result.ratio)) log(`ratio xdpvm / ${result.baseline.name}: ${fmt(result.ratio)}`);
  log(`note: ${result.note}`);
  return publishResult(result, { ...publishFlags(flags), compare: compareLinux, ...(chart ? { chart } : {}), log });
}

type OldResult = BenchResult & { gbps?: { median: number } };

/** An earlier result to compare with; checked before a run too, so a wrong file costs no benchmark. */
function readBaseline(file: string, benchmark: string, workload: string): OldResult {
  let old: OldResult;
  try {
    old = JSON.parse(readFileSync(file, 'utf8')) as OldResult;
  } catch (e) {
    throw new UsageError(`--baseline ${file}: ${(e as Error).message}`);
  }
  if (old.benchmark !== benchmark || old.workload !== workload) {
    throw new UsageError(`--baseline ${file} is a ${old.benchmark} ${old.workload} result, not ${benchmark} ${workload}`);
  }
  return old;
}

/** The ratio when both results have one (the project's headline), else the median rate itself; in the workload's unit. */
function compareLinux(result: TcpBenchResult | TestpmdBenchResult, file: string, threshold: number): Comparison {
  const old = readBaseline(file, result.benchmark, result.workload);
  const tcp = 'gbps' in result;
  const unit = tcp ? 'Gbit/s' : 'Mpps';
  const now = tcp ? result.gbps.median : result.mpps.median;
  const then = tcp ? old.gbps?.median ?? Number.NaN : old.mpps.median;
  const byRatio = typeof old.ratio === 'number' && Number.isFinite(old.ratio) && Number.isFinite(result.ratio);
  const change = byRatio ? result.ratio / old.ratio - 1 : now / then - 1;
  const regressed = change < -threshold;
  const pct = `${change >= 0 ? '+' : ''}${fmt(change * 100, 1)}%`;
  return {
    regressed,
    text:
      `vs ${path.basename(file)} (${old.commit}, ${old.date}): ` +
      (byRatio ? `ratio ${fmt(old.ratio)} -> ${fmt(result.ratio)} (${pct}), ` : `no same-run baseline in one of them, so the rate itself (${pct}): `) +
      `${unit} ${fmt(then, 4)} -> ${fmt(now, 4)}` +
      (regressed ? `  REGRESSION beyond ${fmt(threshold * 100, 0)}%` : ''),
  };
}
