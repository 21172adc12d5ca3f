// `npm test`: installs what the tests need (Debian packages, npm packages,
// native addons, TypeScript build), then runs every test file in its own
// process (a test that crashes cannot take the others down) and ends with
// the line `N passed, N failed`.
//   npm test                 all tests
//   npm test -- virtqueue    only files whose name contains "virtqueue"
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensure } from './ensure.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
ensure({ forTests: true });

function findTests(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) out.push(...findTests(p));
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out.sort();
}

const filters = process.argv.slice(2);
const files = findTests(path.join(root, 'dist', 'test')).filter(
  (f) => filters.length === 0 || filters.some((s) => path.basename(f).includes(s)),
);
let passed = 0;
let failed = 0;
let skipped = 0;
const failures = [];
const t0 = Date.now();
for (const file of files) {
  const rel = path.relative(root, file);
  process.stdout.write(`\n=== ${rel}\n`);
  const r = spawnSync(process.execPath, ['--enable-source-maps', file], {
    cwd: root,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 15 * 60 * 1000,
    env: { ...process.env, FORCE_COLOR: '0' },
  });
  process.stdout.write(r.stdout ?? '');
  process.stdout.write(r.stderr ?? '');
  const num = (label) => {
    const m = new RegExp(`^\\s*${label}:\\s+(\\d+)`, 'm').exec(r.stdout ?? '');
    return m ? Number(m[1]) : undefined;
  };
  const total = num('Total');
  const ok = num('Passed');
  const skip = num('Skipped') ?? 0;
  if (total === undefined || ok === undefined) {
    failed += 1;
    failures.push(`${rel}: exited ${r.status ?? r.signal} without a summary`);
    continue;
  }
  // uvu's Total counts the tests that ran (skipped ones are not in it).
  const bad = total - ok;
  passed += ok;
  skipped += skip;
  failed += bad;
  if (bad > 0 || r.status !== 0) {
    if (bad === 0) failed += 1;
    failures.push(`${rel}: ${bad || 1} failed (exit ${r.status ?? r.signal})`);
  }
}
const secs = ((Date.now() - t0) / 1000).toFixed(1);
process.stdout.write(`\n${files.length} test files in ${secs} s\n`);
for (const f of failures) process.stdout.write(`FAILED ${f}\n`);
process.stdout.write(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}\n`);
process.exit(failed > 0 || files.length === 0 ? 1 : 0);
