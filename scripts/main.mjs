// `npm start`: the main job. Installs what it needs (reusing what is there),
// then measures the AF_XDP data path on a veth pair in fresh namespaces and
// prints the throughput table: the TypeScript backend against the raw C
// baseline, txonly and rxonly. (The guest-driven benchmarks join this as
// the VMM lands.)
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
for (const mode of ['txonly', 'rxonly']) {
  const r = spawnSync(process.execPath, [path.join(root, 'bin', 'xdpvm'), 'bench', 'backend', '--mode', mode, '--runs', '3', '--seconds', '2', '--json', ...extra], {
    stdio: ['ignore', 'pipe', 'inherit'],
    encoding: 'utf8',
  });
  if (r.status !== 0) {
    failed = true;
    continue;
  }
  const res = JSON.parse(r.stdout.trim().split('\n').pop());
  rows.push([`backend ${mode} (${res.params.xdpMode}, ${res.params.size} B)`, res.mpps.median.toFixed(3), res.baseline.mpps.median.toFixed(3), res.ratio.toFixed(3)]);
}
const header = ['workload', 'xdpvm Mpps', 'raw C Mpps', 'ratio'];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
const line = (cells) => cells.map((c, i) => c.padEnd(widths[i])).join('  ');
console.log(`\n${line(header)}\n${line(widths.map((w) => '-'.repeat(w)))}\n${rows.map(line).join('\n')}`);
process.exit(failed ? 1 : 0);
