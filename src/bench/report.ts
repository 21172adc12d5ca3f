// What every benchmark reports: machine facts, the commit, per-run figures,
// the baseline measured in the same run and the ratio; as a table for people,
// as JSON for the next run to compare against, and as an SVG bar chart.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { repoRoot as checkoutRoot } from '../repo-root';
import type { Summary } from './stats';

export interface MachineFacts {
  cpu: string;
  cores: number;
  kernel: string;
  node: string;
  pvm: boolean;
}

export function machineFacts(): MachineFacts {
  const pvm = existsSync('/sys/module/kvm_pvm');
  return { cpu: os.cpus()[0]?.model ?? 'unknown', cores: os.cpus().length, kernel: os.release(), node: process.version, pvm };
}

const repoRoot = checkoutRoot();

export function gitCommit(): string {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: repoRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: repoRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    return dirty ? `${head}-dirty` : head;
  } catch {
    return 'unknown';
  }
}

export function toolVersion(): string {
  return (JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
}

/** The fields every result starts with: which tool, which commit, when, on what machine. */
export function resultHeader(): Pick<BenchResult, 'tool' | 'version' | 'commit' | 'date' | 'machine'> {
  return { tool: 'xdpvm', version: toolVersion(), commit: gitCommit(), date: new Date().toISOString(), machine: machineFacts() };
}

/** The JSON object of one benchmark invocation (the last line printed with --json). */
export interface BenchResult {
  tool: 'xdpvm';
  version: string;
  commit: string;
  date: string;
  machine: MachineFacts;
  benchmark: string;
  workload: string;
  params: Record<string, unknown>;
  mpps: Summary;
  /** What `mpps` measured, when it is not the TypeScript data path against raw C (e.g. 'guest-umem'). */
  subject?: string;
  baseline: { name: string; mpps: Summary };
  ratio: number;
  /**
   * Where each run measured both sides back to back: the ratio within each
   * run. The headline `ratio` is then their median, which a host that
   * changes speed between runs moves far less than a ratio of medians.
   */
  runRatios?: Summary & { ofMedians: number };
  /**
   * A second baseline measured in the same runs (bench device io-fwd: raw C io-fwd beside raw C rx), with the
   * ratio against it and the packets it counted at both ends.
   */
  secondBaseline?: {
    name: string; mpps: Summary; ratio: number; runRatios: Summary & { ofMedians: number }; packets: number; peerPackets: number;
    /** Per run, this baseline over the first (io-fwd: raw C io-fwd / raw C rx, what forwarding leaves the C loop of receiving). */
    ofBaseline?: Summary;
  };
  /** Events per million frames, medians over the runs (bench/per-million.ts). */
  perMillion?: Record<string, number>;
  /** CPU time per frame, baseline thread over ours (per-run medians): the cost ratio, independent of CPU share. */
  cpuRatio?: Summary;
  /** bench pmd: per boot phase (xdpvm run -timeline, and the first frame at the peer), ms from the VMM's start over the runs. */
  bootTimelineMs?: Record<string, Summary>;
  runs: Array<Record<string, unknown>>;
}

export function fmt(n: number, digits = 3): string {
  return n.toFixed(digits);
}

/** A fixed-width table: header row plus rows. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/** Writes the result JSON (and an SVG chart of the runs) under results/; returns the JSON path. */
export function saveResult(result: BenchResult, outFile?: string, svg: string = barChart(result)): string {
  const stamp = result.date.replace(/[:.]/g, '-');
  const file = outFile ?? path.join(repoRoot, 'results', `${result.benchmark}-${result.workload}-${stamp}.json`);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  writeFileSync(file.replace(/\.json$/, '.svg'), svg);
  return file;
}

export interface Comparison {
  regressed: boolean;
  text: string;
}

export interface PublishOptions<R extends BenchResult> {
  /** --out: where the JSON goes (the SVG beside it). */
  out?: string;
  /** --json: print the result as the last line of stdout. */
  json?: boolean;
  /** --baseline FILE and --threshold: compare with an earlier result. */
  baseline?: string;
  threshold?: number;
  compare: (result: R, baselineFile: string, threshold: number) => Comparison;
  /** The chart when the default (Mpps bars) does not fit the workload. */
  chart?: (result: R) => string;
  log: (line: string) => void;
}

/** The end of every benchmark command: save, compare with --baseline, print the JSON line. Returns the exit status (3: regression). */
export function publishResult<R extends BenchResult>(result: R, o: PublishOptions<R>): number {
  const file = saveResult(result, o.out, o.chart?.(result));
  o.log(`saved ${file} (and .svg)`);
  let code = 0;
  if (o.baseline) {
    const cmp = o.compare(result, o.baseline, o.threshold ?? 0.05);
    o.log(cmp.text);
    if (cmp.regressed) code = 3;
  }
  if (o.json) process.stdout.write(`${JSON.stringify(result)}\n`);
  return code;
}

/** Compares with an earlier result: a regression is a ratio lower by more than `threshold` (fraction). */
export function compareWithBaseline(result: BenchResult, baselineFile: string, threshold: number): Comparison {
  const old = JSON.parse(readFileSync(baselineFile, 'utf8')) as BenchResult;
  const change = result.ratio / old.ratio - 1;
  const regressed = change < -threshold;
  const text =
    `vs ${path.basename(baselineFile)} (${old.commit}, ${old.date}): ratio ${fmt(old.ratio)} -> ${fmt(result.ratio)} ` +
    `(${change >= 0 ? '+' : ''}${fmt(change * 100, 1)}%), Mpps ${fmt(old.mpps.median)} -> ${fmt(result.mpps.median)}` +
    (regressed ? `  REGRESSION beyond ${fmt(threshold * 100, 0)}%` : '');
  return { regressed, text };
}

/** The measured side's name in tables and charts. */
export function subjectName(r: BenchResult): string {
  return r.subject ?? (r.benchmark === 'pmd' ? 'PMD guest in xdpvm' : 'xdpvm (TypeScript)');
}

/** Runs as bars: ours and the baseline(s) per run. */
export function barChart(r: BenchResult): string {
  const runs = r.runs as Array<{ mpps?: number; baselineMpps?: number; fwdBaselineMpps?: number }>;
  const series: Array<{ name: string; color: string; of: (x: (typeof runs)[number]) => number }> = [
    { name: subjectName(r), color: '#2b6cb0', of: (x) => x.mpps ?? 0 },
    { name: r.baseline.name, color: '#a0aec0', of: (x) => x.baselineMpps ?? 0 },
    ...(r.secondBaseline ? [{ name: r.secondBaseline.name, color: '#ed8936', of: (x: (typeof runs)[number]) => x.fwdBaselineMpps ?? 0 }] : []),
  ];
  const k = series.length;
  const vals = runs.flatMap((x) => series.map((s) => s.of(x)));
  const max = Math.max(...vals, r.mpps.max, r.baseline.mpps.max) * 1.1 || 1;
  const W = 640, H = 320, left = 50, bottom = 40, top = 40;
  const plotH = H - bottom - top;
  const bw = (W - left - 20) / (runs.length * (k + 1));
  const y = (v: number): number => top + plotH - (v / max) * plotH;
  let bars = '';
  runs.forEach((x, i) => {
    const x0 = left + i * (k + 1) * bw + bw / 2;
    series.forEach((s, n) => {
      const v = s.of(x);
      bars += `<rect x="${(x0 + n * bw).toFixed(1)}" y="${y(v).toFixed(1)}" width="${(bw * 0.9).toFixed(1)}" height="${(top + plotH - y(v)).toFixed(1)}" fill="${s.color}"/>`;
    });
    bars += `<text x="${(x0 + ((k - 1) * bw) / 2).toFixed(1)}" y="${H - bottom + 15}" font-size="11" text-anchor="middle">run ${i + 1}</text>`;
  });
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => {
    const v = max * f;
    return `<line x1="${left}" x2="${W - 10}" y1="${y(v)}" y2="${y(v)}" stroke="#e2e8f0"/><text x="${left - 5}" y="${y(v) + 4}" font-size="10" text-anchor="end">${v.toFixed(2)}</text>`;
  });
  const legend = series.map((s, n) => `<rect x="${W - 130}" y="${28 + n * 14}" width="10" height="10" fill="${s.color}"/><text x="${W - 115}" y="${37 + n * 14}" font-size="11">${s.name}</text>`);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
<text x="${W / 2}" y="20" font-size="14" text-anchor="middle">${r.benchmark} ${r.workload}: ${fmt(r.mpps.median)} Mpps vs ${r.baseline.name} ${fmt(r.baseline.mpps.median)} (ratio ${fmt(r.ratio)}) @ ${r.commit}</text>
${ticks.join('\n')}
${bars}
<text x="14" y="${top + plotH / 2}" font-size="11" transform="rotate(-90 14 ${top + plotH / 2})" text-anchor="middle">Mpps</text>
${legend.join('\n')}
</svg>
`;
}
