// `npm start`: the main job. Installs what it needs (reusing what is there),
// then measures the AF_XDP data path on veth pairs in fresh namespaces and
// prints the throughput table, each figure next to its baseline from the
// same run.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensure } from './ensure.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
if (process.getuid?.() !== 0) {
  console.error('npm start needs root (network namespaces, XDP programs, AF_XDP sockets)');
  process.exit(1);
}
ensure();
const extra = process.argv.slice(2);
const rows = [];
let failed = false;
// This machine has no /dev/kvm (see README), so the guest-driven runs are the
// device model driven by an in-process poll-mode driver; on a KVM host the
// PMD guest joins this table.
const jobs = [
  ['AF_XDP backend, txonly', ['backend', '--mode', 'txonly']],
  ['AF_XDP backend, rxonly', ['backend', '--mode', 'rxonly']],
  ['virtio-net device + AF_XDP (I/O worker), txonly', ['device', '--backend', 'af-xdp', '--threads']],
  ['virtio-net device, loopback (Mpps per core)', ['device', '--backend', 'loopback']],
];
for (const [name, args] of jobs) {
  console.log(`\n== ${name}`);
  const r = spawnSync(process.execPath, [path.join(root, 'bin', 'xdpvm'), 'bench', ...args, '--runs', '3', '--seconds', '2', '--json', ...extra], {
    stdio: ['ignore', 'pipe', 'inherit'],
    encoding: 'utf8',
  });
  if (r.status !== 0) {
    failed = true;
    continue;
  }
  const res = JSON.parse(r.stdout.trim().split('\n').pop());
  rows.push([name, res.mpps.median.toFixed(3), res.baseline.name, res.baseline.mpps.median.toFixed(3), res.ratio.toFixed(3)]);
}
const header = ['workload (64 B frames, 3 runs x 2 s, medians)', 'xdpvm Mpps', 'baseline', 'baseline Mpps', 'ratio'];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
const line = (cells) => cells.map((c, i) => c.padEnd(widths[i])).join('  ');
console.log(`\n${line(header)}\n${line(widths.map((w) => '-'.repeat(w)))}\n${rows.map(line).join('\n')}`);
process.exit(failed ? 1 : 0);
