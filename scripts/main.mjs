// `npm start`: the main job. Installs what it needs (reusing what is there),
// then measures the AF_XDP data path on veth pairs in fresh namespaces and
// prints the throughput table, each figure next to its baseline from the
// same run.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensure, ensureKvmHarness } from './ensure.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
if (process.getuid?.() !== 0) {
  console.error('npm start needs root (network namespaces, XDP programs, AF_XDP sockets)');
  process.exit(1);
}
ensure();
const extra = process.argv.slice(2);
const rows = [];
let failed = false;
// The PMD test guest boots under `xdpvm run` (bench pmd). Where /dev/kvm is
// missing (a host that is itself a PVM guest) it runs in the nested-KVM TCG
// harness instead: the table then says so, and that row measures QEMU's
// emulator, not xdpvm.
const hostKvm = existsSync('/dev/kvm');
if (!hostKvm) ensureKvmHarness();
const jobs = [
  ['AF_XDP backend, txonly', ['backend', '--mode', 'txonly']],
  ['AF_XDP backend, rxonly', ['backend', '--mode', 'rxonly']],
  ['virtio-net device + AF_XDP (I/O worker), txonly', ['device', '--backend', 'af-xdp', '--threads']],
  ['virtio-net device, loopback (Mpps per core)', ['device', '--backend', 'loopback']],
  ['Linux guest iperf3 TCP guest->peer, Gbit/s (QEMU TCG + vhost-user; vs QEMU tap)', ['tcp'], false, 'gbps'],
  [hostKvm ? 'PMD guest in xdpvm run (KVM), txonly' : 'PMD guest in xdpvm run (nested KVM under TCG: emulated), txonly', ['pmd', '--mode', 'txonly', '--xdp-mode', 'skb'], !hostKvm],
];
for (const [name, args, inTcg, unit = 'mpps'] of jobs) {
  console.log(`\n== ${name}`);
  // The TCG guest sees the checkout read-only: the result file goes to its tmpfs.
  const argv = [path.join(root, 'bin', 'xdpvm'), 'bench', ...args, '--runs', inTcg || unit === 'gbps' ? '1' : '3', '--seconds', unit === 'gbps' ? '4' : '2', '--json', ...(inTcg ? ['--out', '/run/bench-pmd.json'] : []), ...extra];
  const r = inTcg
    ? spawnSync('bash', [path.join(root, 'scripts', 'kvm-in-tcg.sh'), `cd ${root} && ${[process.execPath, ...argv].join(' ')} 2>&1 >/run/bench.json; cat /run/bench.json`], {
        cwd: root,
        stdio: ['ignore', 'pipe', 'inherit'],
        encoding: 'utf8',
        maxBuffer: 64 << 20,
      })
    : spawnSync(process.execPath, argv, { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });
  if (r.status !== 0) {
    failed = true;
    continue;
  }
  const last = r.stdout.split('\n').filter((l) => l.startsWith('{"tool":"xdpvm"'));
  if (inTcg) process.stdout.write(r.stdout.split('\n').filter((l) => /^(bench|  run|  NOTE|boot to|ratio|saved|xdpvm)/.test(l)).join('\n') + '\n');
  if (last.length === 0) {
    failed = true;
    continue;
  }
  const res = JSON.parse(last[last.length - 1]);
  rows.push([name, res[unit].median.toFixed(3), res.baseline.name, res.baseline[unit].median.toFixed(3), res.ratio.toFixed(3)]);
}
const header = ['workload (64 B frames, 3 runs x 2 s, medians; emulated rows: 1 run)', 'xdpvm', 'baseline', 'baseline', 'ratio'];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
const line = (cells) => cells.map((c, i) => c.padEnd(widths[i])).join('  ');
console.log(`\n${line(header)}\n${line(widths.map((w) => '-'.repeat(w)))}\n${rows.map(line).join('\n')}`);
process.exit(failed ? 1 : 0);
