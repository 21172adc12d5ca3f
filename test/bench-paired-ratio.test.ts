// The headline ratio of benchmarks that alternate both sides run by run: the
// median of the per-run ratios, which a host changing speed between runs
// leaves alone, where the ratio of the medians mixes fast and slow runs.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { pairedRatio } from '../src/bench/stats';

test('a host that halves its speed for some runs does not move the paired ratio', () => {
  // Every run: ours at 0.8 of the baseline. Runs 2, 4 and 5 on a host at half speed.
  const speed = [1, 0.5, 1, 0.5, 0.5];
  const runs = speed.map((s) => ({ mpps: 0.8 * 2.5 * s, baselineMpps: 2.5 * s }));
  const r = pairedRatio(runs);
  assert.ok(Math.abs(r.ratio - 0.8) < 1e-12, `paired ${r.ratio}`);
  assert.ok(Math.abs(r.runRatios.min - 0.8) < 1e-12 && Math.abs(r.runRatios.max - 0.8) < 1e-12);
});

test('the ratio of the medians is reported beside it, and differs when the runs mix host speeds', () => {
  const runs = [
    { mpps: 2.0, baselineMpps: 1.3 }, // ours on a fast host, baseline on a slow one
    { mpps: 1.1, baselineMpps: 2.5 },
    { mpps: 1.2, baselineMpps: 2.4 },
  ];
  const r = pairedRatio(runs);
  assert.ok(Math.abs(r.ratio - 0.5) < 1e-12, `median of ${runs.map((x) => x.mpps / x.baselineMpps)}`);
  assert.ok(Math.abs(r.runRatios.ofMedians - 1.2 / 2.4) < 1e-12);
  assert.ok(Math.abs(r.runRatios.max - 2.0 / 1.3) < 1e-12);
  assert.throws(() => pairedRatio([]), /no values/);
});

test.run();
