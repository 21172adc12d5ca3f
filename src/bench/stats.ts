// Summary statistics for repeated benchmark runs.
export interface Summary {
  median: number;
  min: number;
  max: number;
}

export function summarize(values: readonly number[]): Summary {
  if (values.length === 0) throw new RangeError('no values to summarize');
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { median, min: s[0]!, max: s[s.length - 1]! };
}

/**
 * The ratio of benchmarks whose every run measured both sides back to back:
 * the median of the per-run ratios (a host that changes speed between runs
 * moves it far less than a ratio of medians), with their spread and the
 * ratio of the medians beside it.
 */
export function pairedRatio(runs: readonly { mpps: number; baselineMpps: number }[]): { ratio: number; runRatios: Summary & { ofMedians: number } } {
  const per = summarize(runs.map((r) => r.mpps / r.baselineMpps));
  const ofMedians = summarize(runs.map((r) => r.mpps)).median / summarize(runs.map((r) => r.baselineMpps)).median;
  return { ratio: per.median, runRatios: { ...per, ofMedians } };
}
