// `npm test`: installs what the tests need (Debian packages, npm packages,
// native addons, TypeScript build), then runs every test file in its own
// process (a test that crashes cannot take the others down) and ends with
// the line `N passed, N failed, N skipped`, after the list of skipped tests
// and why each could not run here.
//   npm test                 all tests
//   npm test -- virtqueue    only files whose name contains "virtqueue"
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensure, ensureKvmHarness } from './ensure.mjs';
import { ourNetns, sweepDeadNetns } from './netns-sweep.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
ensure({ forTests: true });
// The loader tests read the Debian kernel and the TCG-based tests need QEMU: install them up front.
ensureKvmHarness();

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
// Tests that need /dev/kvm. This kind of machine is itself a PVM guest and
// has none; they then run, for real, in a TCG guest whose emulated SVM gives
// KVM (scripts/kvm-in-tcg.sh): correct but slow, so one boot runs them all.
const needsKvm = (f) => /^(kvm|pmd|vmm-kvm)-/.test(path.basename(f));
const hostHasKvm = existsSync('/dev/kvm');
// Where this runner provides KVM (here, or in the TCG harness), a test that finds no /dev/kvm fails
// instead of skipping (test/support/kvm-guest.ts): a harness that lost KVM must not pass its files.
const REQUIRE_KVM = 'XDPVM_REQUIRE_KVM=1';
const hostKind = !hostHasKvm ? 'none' : existsSync('/sys/module/kvm_pvm') ? 'pvm' : 'hardware';
process.stdout.write(
  `KVM on this host: ${{ none: 'none (no /dev/kvm): the KVM test files run in the nested-SVM TCG harness', pvm: 'PVM /dev/kvm (ring 3 native, ring 0 emulated): KVM test files run here; Linux under our KVM is skipped', hardware: '/dev/kvm on hardware virtualization: every KVM test file runs here' }[hostKind]}\n`,
);
/** Per file, inside the TCG guest: generous (everything there is emulated), but a hang costs no more. */
const TCG_FILE_LIMIT_S = 600;
/** How the TCG guest's kernel announces its death (softlockup_panic=1 turns a lock-up into a panic), or the harness a silent hang. */
const KERNEL_DEATH = /soft lockup|hard LOCKUP|Kernel panic|BUG: |general protection fault|Oops|kvm-in-tcg: no console output/;
const hostFiles = hostHasKvm ? files : files.filter((f) => !needsKvm(f));
const tcgFiles = hostHasKvm ? [] : files.filter(needsKvm);

let passed = 0;
let failed = 0;
let skipped = 0;
const failures = [];
/** [file, test name, reason] of every skipped test (test/support/skip.ts prints them). */
const skips = [];
/** The output of each failed file, printed again at the very end: CI logs are often read from the tail. */
const failedOutput = [];
const t0 = Date.now();
// Left by an earlier run that was killed (its processes are gone): not this run's to count, but removed.
const stale = sweepDeadNetns();
if (stale.length > 0) process.stdout.write(`removed ${stale.length} network namespaces left by processes that are gone: ${stale.join(' ')}\n`);
process.stdout.write(`setup done; running ${files.length} test files\n`);

function account(rel, rawStdout, status) {
  // uvu colours its summary where it sees a terminal (the TCG guest's console is one): read the text without the escapes.
  const stdout = (rawStdout ?? '').replace(/\x1b\[[0-9;]*m/g, '');
  const num = (label) => {
    const m = new RegExp(`^\\s*${label}:\\s+(\\d+)`, 'm').exec(stdout ?? '');
    return m ? Number(m[1]) : undefined;
  };
  const total = num('Total');
  const ok = num('Passed');
  const skip = num('Skipped') ?? 0;
  const named = [...(stdout ?? '').matchAll(/^# skip: (.*) -- (.*)$/gm)].map((m) => [rel, m[1], m[2]]);
  skips.push(...named);
  if (total !== undefined && named.length !== skip) {
    // Every skip must say why (skipTest); a bare test.skip, or a reason without a skip, is a defect of the file.
    failed += 1;
    failures.push(`${rel}: uvu skipped ${skip} tests but ${named.length} reasons were given`);
    failedOutput.push([rel, stdout ?? '']);
  }
  if (total === undefined || ok === undefined) {
    failed += 1;
    failures.push(`${rel}: exited ${status} without a summary`);
    failedOutput.push([rel, stdout ?? '']);
    return;
  }
  if (total === 0 && skip === 0) {
    failed += 1;
    failures.push(`${rel}: registered no test`);
    failedOutput.push([rel, stdout ?? '']);
    return;
  }
  // uvu's Total counts the tests that ran (skipped ones are not in it).
  const bad = total - ok;
  passed += ok;
  skipped += skip;
  failed += bad;
  if (bad > 0 || status !== 0) {
    if (bad === 0) failed += 1;
    failures.push(`${rel}: ${bad || 1} failed (exit ${status})`);
    failedOutput.push([rel, stdout ?? '']);
  }
}

for (const file of hostFiles) {
  const rel = path.relative(root, file);
  process.stdout.write(`\n=== ${rel}\n`);
  const started = Date.now();
  const before = new Set(ourNetns().map((n) => n.name));
  const r = spawnSync(process.execPath, ['--enable-source-maps', file], {
    cwd: root,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 15 * 60 * 1000,
    env: { ...process.env, FORCE_COLOR: '0', ...(needsKvm(file) ? { XDPVM_REQUIRE_KVM: '1' } : {}) },
  });
  process.stdout.write(r.stdout ?? '');
  process.stdout.write(r.stderr ?? '');
  process.stdout.write(`(${rel}: ${((Date.now() - started) / 1000).toFixed(1)} s)\n`);
  account(rel, `${r.stdout ?? ''}${r.stderr ?? ''}`, r.status ?? r.signal);
  // A namespace the file's processes made and did not remove is a failed tear-down (removed here, so the
  // next files start clean); one of a process still running (not the file's) is left alone.
  const leaked = sweepDeadNetns(before);
  if (leaked.length > 0) {
    failed += 1;
    failures.push(`${rel}: left ${leaked.length} network namespaces behind (${leaked.join(' ')})`);
    process.stdout.write(`${rel} left network namespaces behind, removed now: ${leaked.join(' ')}\n`);
  }
}

if (tcgFiles.length > 0) {
  process.stdout.write(
    `\n=== ${tcgFiles.length} test files need /dev/kvm, which this host does not have (it is itself a PVM guest); ` +
      'running them in a QEMU TCG guest with nested SVM (scripts/kvm-in-tcg.sh). Functional only: nothing there is timed.\n',
  );
  let pending = tcgFiles.map((f) => path.relative(root, f));
  const retried = new Set();
  // One boot runs every pending file, each under its own time limit. If the
  // TCG guest's own kernel dies (its soft-lockup watchdog panics it), the
  // files that finished count, the one that was running gets one retry in a
  // fresh boot (the lock-up is in the emulator's guest, not the test's
  // verdict), and the rest run in that boot too.
  for (let boot = 1; pending.length > 0; boot++) {
    const script = `cd ${root} && for f in ${pending.join(' ')}; do echo "@@@ BEGIN $f"; ${REQUIRE_KVM} timeout -s KILL ${TCG_FILE_LIMIT_S} ${process.execPath} --enable-source-maps $f 2>&1; echo "@@@ END $f $?"; done`;
    const r = spawnSync('bash', [path.join(root, 'scripts', 'kvm-in-tcg.sh'), script], {
      cwd: root,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 40 * 60 * 1000,
      maxBuffer: 64 << 20,
    });
    const out = (r.stdout ?? '').replace(/\r/g, '');
    const next = [];
    for (const rel of pending) {
      const m = new RegExp(`@@@ BEGIN ${rel}\\n([\\s\\S]*?)@@@ END ${rel} (\\d+)`).exec(out);
      if (m) {
        process.stdout.write(`\n=== ${rel} (in the TCG guest${boot > 1 ? `, boot ${boot}` : ''})\n`);
        process.stdout.write(m[1]);
        if (m[2] === '137') process.stdout.write(`(killed after ${TCG_FILE_LIMIT_S} s)\n`);
        account(rel, m[1], Number(m[2]));
        continue;
      }
      const started = out.includes(`@@@ BEGIN ${rel}\n`);
      if (!started) {
        next.push(rel);
        continue;
      }
      const ran = out.slice(out.indexOf(`@@@ BEGIN ${rel}\n`));
      const lines = ran.split('\n');
      // The kernel's own account of why it died (its first lines), then how the output ended.
      const oops = lines.findIndex((l) => KERNEL_DEATH.test(l));
      const why = oops >= 0 ? `${lines.slice(oops, oops + 25).join('\n')}\n...\n` : '';
      process.stdout.write(
        `\n=== ${rel} (in the TCG guest, boot ${boot}): the TCG guest ended while it ran (harness exit ${r.status ?? r.signal})\n` +
          `${why}last lines:\n${lines.slice(-25).join('\n')}\n${r.stderr ?? ''}\n`,
      );
      if (!retried.has(rel) && oops >= 0) {
        retried.add(rel);
        process.stdout.write(`the TCG guest's kernel locked up; running ${rel} once more in a fresh boot\n`);
        next.push(rel);
      } else {
        failed += 1;
        failures.push(`${rel}: did not finish in the TCG guest (harness exit ${r.status ?? r.signal})`);
      }
    }
    if (next.length === pending.length) {
      // Nothing ran at all: the harness itself is broken; do not loop.
      process.stdout.write(`the TCG harness ran nothing (exit ${r.status ?? r.signal}):\n${out.split('\n').slice(-30).join('\n')}\n${r.stderr ?? ''}\n`);
      for (const rel of next) {
        failed += 1;
        failures.push(`${rel}: did not run in the TCG guest`);
      }
      break;
    }
    pending = next;
  }
}
for (const [rel, output] of failedOutput) {
  const lines = output.replace(/\x1b\[[0-9;]*m/g, '').trimEnd().split('\n');
  process.stdout.write(`\n--- ${rel} failed; its last ${Math.min(lines.length, 80)} lines again:\n${lines.slice(-80).join('\n')}\n`);
}
const secs = ((Date.now() - t0) / 1000).toFixed(1);
process.stdout.write(`\n${files.length} test files in ${secs} s\n`);
if (skips.length) process.stdout.write(`\n${skips.length} skipped (cannot run on this host):\n`);
for (const [rel, name, why] of skips) process.stdout.write(`SKIPPED ${rel}: ${name} -- ${why}\n`);
for (const f of failures) process.stdout.write(`FAILED ${f}\n`);
process.stdout.write(`${passed} passed, ${failed} failed, ${skipped} skipped\n`);
process.exit(failed > 0 || files.length === 0 ? 1 : 0);
