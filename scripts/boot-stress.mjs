// Boots the PMD guest under `xdpvm run` again and again, on a veth pair, and
// reports any boot that hangs (no exit within --timeout-ms) with where each
// thread of the VMM was. Written for the early vCPU start: a CI run of
// txonly with 2 queue pairs and 2 vCPUs once hung with no console output
// under heavy load. --load N adds N busy-looping processes for the duration
// (keep it short on a shared host).
// --props adds -netdev properties (e.g. ,guest-umem=on), --xdp-mode picks the attach mode; a boot that ends in
// a triple fault prints the VMM's account of it (last exits, the system block as loaded or not).
//   node scripts/boot-stress.mjs [--boots 30] [--queues 2] [--load 2] [--timeout-ms 20000] [--props ,guest-umem=on] [--xdp-mode native|skb]
// Needs root and /dev/kvm; run `npm run build` first. Exit status 1 if any boot hung or failed.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const { VethPair, inNetns } = require(path.join(root, 'dist/src/host/netns.js'));
const { PmdVm } = require(path.join(root, 'dist/src/bench/pmd-vm.js'));
const { XdpCounter } = require(path.join(root, 'dist/src/bench/xdp-counter.js'));
const { xsk } = require(path.join(root, 'dist/src/native/xsk.js'));

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const boots = opt('boots', 30);
const queues = opt('queues', 2);
const load = opt('load', 2);
const timeoutMs = opt('timeout-ms', 20_000);
const text = (name) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const props = text('props');
const xdpMode = text('xdp-mode');
if (props !== undefined && !/^(,[a-z_-]+=[A-Za-z0-9_.-]+)+$/.test(props)) throw new Error(`--props: '${props}' is not a list of ,key=value`);
if (xdpMode !== undefined && xdpMode !== 'native' && xdpMode !== 'skb') throw new Error(`--xdp-mode: '${xdpMode}' is not native or skb`);

const hogs = Array.from({ length: load }, () => spawn(process.execPath, ['-e', 'for(;;);'], { stdio: 'ignore' }));
const pair = new VethPair('stress', { queues });
const counter = inNetns(pair.b.netns, () => XdpCounter.attach(xsk.ifNameToIndex(pair.b.ifname), 'skb'));
let hung = 0;
let failed = 0;
try {
  for (let i = 1; i <= boots; i++) {
    const before = counter.total();
    const vm = PmdVm.start({
      netns: pair.a.netns, ifname: pair.a.ifname, cpus: queues, queues,
      ...(props ? { netdevProps: props } : {}),
      ...(xdpMode ? { xdpMode } : {}),
      append: `mode=txonly queues=${queues} count=500 timeout=60`, timeline: true, timeoutMs,
    });
    const e = await vm.exited;
    const sent = e.result?.per_queue.map((q) => q.tx_packets) ?? [];
    const ok = e.code === 0 && sent.length === queues && sent.every((n) => n === 500);
    if (e.timedOut) hung++;
    else if (!ok) failed++;
    const t = e.timeline;
    process.stdout.write(
      `boot ${i}/${boots}: ${e.timedOut ? 'HUNG' : ok ? 'ok' : `FAILED (exit ${e.code ?? e.signal})`}, sent ${JSON.stringify(sent)}, ` +
        `peer +${counter.total() - before}, wall ${e.wallMs.toFixed(0)} ms${t ? `, firstKvmRun ${t.firstKvmRun} driverOk ${t.driverOk} firstTx ${t.firstTx}` : ''}\n`,
    );
    if (e.timedOut || !ok) process.stdout.write(`--- console\n${e.console.slice(-1500)}\n--- stderr\n${e.stderr.slice(-4000)}\n`);
  }
} finally {
  for (const h of hogs) h.kill('SIGKILL');
  counter.close();
  pair.remove();
}
process.stdout.write(`${boots} boots, ${hung} hung, ${failed} failed (load: ${load} busy processes, ${queues} queue pairs and vCPUs)\n`);
process.exitCode = hung || failed ? 1 : 0;
