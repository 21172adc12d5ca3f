// The TSC rate a VMM passes to a bare-metal guest comes from /proc/cpuinfo
// only where "cpu MHz" is that rate (an invariant TSC whose frequency the
// kernel knows, or no APERF/MPERF); otherwise 0, and the guest calibrates.
import * as assert from 'uvu/assert';
import { test } from 'uvu';
import { hostTscKhz, tscKhzFromCpuinfo } from '../src/vmm/loader';

const cpu = (mhz: string, flags: string): string =>
  `processor\t: 0\nmodel name\t: AMD EPYC\ncpu MHz\t\t: ${mhz}\nflags\t\t: fpu tsc ${flags}\n\nprocessor\t: 1\ncpu MHz\t\t: 1.000\n`;

test('a known-frequency invariant TSC: cpu MHz of the first CPU, in kHz', () => {
  assert.equal(tscKhzFromCpuinfo(cpu('2096.020', 'constant_tsc nonstop_tsc tsc_known_freq')), { khz: 2_096_020, reason: 'tsc_known_freq' });
  assert.is(tscKhzFromCpuinfo(cpu('2999.999', 'constant_tsc nonstop_tsc')).khz, 2_999_999, 'no APERF/MPERF: cpu MHz is cpu_khz');
});

test('unknown when the TSC is not invariant, or cpu MHz is the current clock, or absent', () => {
  assert.is(tscKhzFromCpuinfo(cpu('2096.020', 'constant_tsc')).khz, 0);
  assert.is(tscKhzFromCpuinfo(cpu('3400.000', 'constant_tsc nonstop_tsc aperfmperf')).khz, 0);
  assert.is(tscKhzFromCpuinfo('processor : 0\n').khz, 0);
  assert.is(hostTscKhz('/nonexistent/cpuinfo'), 0);
});

test('this host: a number, 0 or plausible', () => {
  const khz = hostTscKhz();
  assert.ok(khz === 0 || (khz > 100_000 && khz < 10_000_000), String(khz));
  console.log(`# host TSC: ${khz} kHz`);
});

test.run();
