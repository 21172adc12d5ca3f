// `xdpvm bench testpmd --mode txonly|rxonly|io`: a Linux guest runs
// dpdk-testpmd (virtio PMD, device bound to uio_pci_generic, huge pages) on
// its NIC for a timed window, once per run on a freshly booted guest. The
// peer counts what the guest sends with an XDP program (txonly, io) and
// generates 64-byte UDP frames with the raw C XSK loop (rxonly, io). The rate
// is testpmd's own count over the window, which the guest times itself (the
// same script works under `xdpvm run`, whose console takes no input). The
// baseline of the same run is the same guest on QEMU's own tap backend.
import { inNetns } from '../host/netns';
import { xsk } from '../native/xsk';
import { resultHeader, type BenchResult } from './report';
import { summarize, type Summary } from './stats';
import { XdpCounter } from './xdp-counter';
import { XSK_ENDPOINT_SCRIPT, type EndpointParams, type EndpointResult } from './xsk-endpoint';
import {
  bootGuest,
  chooseEngine,
  ChildRun,
  ensureHostTools,
  guestImage,
  guestResult,
  NetRig,
  nicName,
  TCG_NOTE,
  VhostUserDevice,
  DRAIN_CONSOLE,
  type DeviceCounters,
  type Engine,
  type GuestImage,
  type GuestNic,
} from './linux-guest-rig';
import type { Compare } from './linux-tcp-bench';

export type TestpmdMode = 'txonly' | 'rxonly' | 'io';
export const TESTPMD_MODES: readonly TestpmdMode[] = ['txonly', 'rxonly', 'io'];

export interface TestpmdBenchOptions {
  mode: TestpmdMode;
  /** The forwarding window per run. */
  seconds: number;
  runs: number;
  engine?: Engine;
  compare?: Compare;
  imageDir?: string;
  progress: (line: string) => void;
  onConsole?: (line: string) => void;
}

/** testpmd's "Forward statistics for port 0" of the window (start .. stop). */
export interface TestpmdStats {
  rxPackets: number;
  rxDropped: number;
  txPackets: number;
  txDropped: number;
}

export interface TestpmdBootResult {
  nic: string;
  bootSeconds: number;
  /** The window as the guest timed it (its uptime at start and at stop). */
  windowSeconds: number;
  testpmd: TestpmdStats;
  /** The mode's packets per second: TX for txonly and io (forwarded), RX for rxonly. */
  mpps: number;
  /** Frames the peer's XDP program counted (txonly, io). */
  peerCounted?: number;
  /** Frames the peer's generator sent (rxonly, io), over its whole run (which spans the window). */
  peerGenerated?: number;
  /** Our device's counters over the boot (vhost-user under QEMU TCG only). */
  device?: DeviceCounters;
}

export interface TestpmdBenchResult extends BenchResult {
  mode: TestpmdMode;
  engine: Engine;
  engineWhy: string;
  note: string;
}

/** The result's `benchmark` (files: results/linux-testpmd-MODE-DATE.json). */
export const TESTPMD_BENCHMARK = 'linux-testpmd';
/** Seconds between "ready" and "start" in the guest: the generator gets going in that gap. */
const LEAD_IN = 2;

/**
 * The guest's command. testpmd runs interactively on a FIFO held open
 * read-write (so it never sees EOF); the script waits for its prompt, says
 * "ready", then sends start, sleeps, sends stop and quit, and prints what
 * testpmd printed, with the window's guest uptimes on marker lines.
 */
export function testpmdGuestScript(mode: TestpmdMode, seconds: number): string {
  return [
    'mkfifo /tmp/i',
    // Two lcores on the one vCPU; a small mbuf pool (512 MiB guest).
    `dpdk-testpmd --lcores 0@0,1@0 -a "$XDPVM_PCI" -- -i --total-num-mbufs=2048 --forward-mode=${mode} <>/tmp/i >/tmp/o 2>&1 &`,
    'p=$!;n=0',
    `until grep -q 'testpmd> ' /tmp/o;do kill -0 $p 2>/dev/null&&[ $n -lt 600 ]||{ cat /tmp/o;echo XDPVM-TESTPMD failed;${DRAIN_CONSOLE};exit 3;};sleep .2;n=$((n+1));done`,
    "u(){ cut -d' ' -f1 /proc/uptime;}",
    `echo XDPVM-TESTPMD ready;sleep ${LEAD_IN}`,
    'echo start>/tmp/i;echo "XDPVM-TESTPMD start $(u)"',
    `sleep ${seconds}`,
    'echo stop>/tmp/i;echo "XDPVM-TESTPMD stop $(u)"',
    // Only the window's statistics (the console is slow); all of it if testpmd failed.
    "sleep 1;echo quit>/tmp/i;wait $p;r=$?;[ $r = 0 ]&&grep -A3 'Forward statistics for port 0' /tmp/o||cat /tmp/o",
    `echo "XDPVM-TESTPMD exit rc=$r";${DRAIN_CONSOLE};exit $r`,
  ].join('\n');
}

/** The window's statistics and length from the guest's console. */
export function parseTestpmdConsole(text: string): { stats: TestpmdStats; windowSeconds: number } {
  const t = text.replace(/\r/g, '');
  const start = /^XDPVM-TESTPMD start ([\d.]+)$/m.exec(t);
  const stop = /^XDPVM-TESTPMD stop ([\d.]+)$/m.exec(t);
  if (!start || !stop) throw new Error('testpmd: the guest printed no start/stop markers');
  const at = t.indexOf('Forward statistics for port 0');
  if (at < 0) throw new Error(`testpmd printed no forward statistics:\n${t.slice(-3000)}`);
  const block = t.slice(at, at + 600);
  const num = (label: string): number => {
    const m = new RegExp(`${label}:\\s+(\\d+)`).exec(block);
    if (!m) throw new Error(`testpmd: no ${label} in\n${block}`);
    return Number(m[1]);
  };
  return {
    stats: { rxPackets: num('RX-packets'), rxDropped: num('RX-dropped'), txPackets: num('TX-packets'), txDropped: num('TX-dropped') },
    windowSeconds: Number(stop[1]) - Number(start[1]),
  };
}

/** The raw C XSK loop sending 64-byte frames from the peer for `seconds`, in a child process with a time limit. */
function startGenerator(rig: NetRig, seconds: number): { run: ChildRun; result: () => Promise<EndpointResult> } {
  const p: EndpointParams = { netns: rig.b.netns, ifname: rig.b.ifname, impl: 'c', direction: 'tx', xdpMode: 'native', seconds, size: 64, batch: 64, queue: 0 };
  const run = ChildRun.spawn(process.execPath, [XSK_ENDPOINT_SCRIPT, JSON.stringify(p)], { label: 'peer generator', timeoutMs: (seconds + 30) * 1000 });
  return {
    run,
    result: async () => {
      const e = await run.exited;
      const last = run.output.trim().split('\n').pop() ?? '';
      if (e.code !== 0) throw new Error(`peer generator failed (${e.signal ?? `exit ${e.code}`}${e.timedOut ? ', time limit' : ''}): ${run.tail(10)}`);
      return JSON.parse(last) as EndpointResult;
    },
  };
}

export interface TestpmdBootContext {
  engine: Engine;
  image: GuestImage;
  rig: NetRig;
  mode: TestpmdMode;
  seconds: number;
  progress: (line: string) => void;
  onConsole?: (line: string) => void;
}

/** One boot: peer counter and/or generator, the guest's testpmd on `nic`. Everything it started is stopped. */
export async function testpmdBoot(ctx: TestpmdBootContext, nic: GuestNic): Promise<TestpmdBootResult> {
  const { rig, engine, mode } = ctx;
  const name = nicName(engine, nic);
  let device: VhostUserDevice | undefined;
  let counter: XdpCounter | undefined;
  let vm: ChildRun | undefined;
  let gen: ReturnType<typeof startGenerator> | undefined;
  let bridged = false;
  try {
    if (nic === 'xdpvm' && engine === 'qemu-tcg') device = VhostUserDevice.open(rig, 'testpmd');
    if (nic === 'qemu-tap') {
      rig.bridgeTap();
      bridged = true;
    }
    if (mode !== 'rxonly') counter = inNetns(rig.b.netns, () => XdpCounter.attach(xsk.ifNameToIndex(rig.b.ifname), 'native'));
    vm = bootGuest({
      engine,
      nic,
      image: ctx.image,
      rig,
      ...(device ? { device } : {}),
      params: { cmd: testpmdGuestScript(mode, ctx.seconds), bind: 'uio', hugepages: 64 },
      timeoutMs: 240_000 + ctx.seconds * 1000,
      label: `guest (${name})`,
      onLine: (line) => {
        ctx.onConsole?.(line);
        const m = /^XDPVM-TESTPMD (ready|start|stop)/.exec(line);
        if (!m) return;
        ctx.progress(`    ${name}: testpmd ${m[1]}`);
        // The generator spans the lead-in, the window and a margin.
        if (m[1] === 'ready' && mode !== 'txonly' && !gen) gen = startGenerator(rig, LEAD_IN + ctx.seconds + 3);
      },
    });
    const r = await guestResult(vm);
    if (!r.began || r.rc !== 0) {
      throw new Error(
        `guest (${name}): testpmd did not finish cleanly (${r.error ? `XDPVM-ERROR ${r.error}` : r.exit.timedOut ? 'time limit' : `rc ${r.rc}, exit ${r.exit.code}`}):\n${vm.tail(60)}`,
      );
    }
    const { stats, windowSeconds } = parseTestpmdConsole(r.console);
    const res: TestpmdBootResult = {
      nic: name,
      bootSeconds: r.exit.seconds,
      windowSeconds,
      testpmd: stats,
      mpps: (mode === 'rxonly' ? stats.rxPackets : stats.txPackets) / windowSeconds / 1e6,
    };
    if (gen) res.peerGenerated = (await gen.result()).packets;
    else if (mode !== 'txonly') throw new Error(`guest (${name}): testpmd never said ready, so the generator never ran`);
    if (counter) res.peerCounted = counter.total();
    const c = device?.counters();
    if (c) res.device = c;
    return res;
  } finally {
    await vm?.stop();
    if (gen) await gen.run.stop();
    counter?.close();
    await device?.close();
    if (bridged) rig.unbridgeTap();
  }
}

const zero: Summary = { median: 0, min: 0, max: 0 };

function describe(mode: TestpmdMode, r: TestpmdBootResult): string {
  const s = r.testpmd;
  const guest = `testpmd RX ${s.rxPackets} (dropped ${s.rxDropped}), TX ${s.txPackets} (dropped ${s.txDropped}) in ${r.windowSeconds.toFixed(2)} s`;
  const peer = [
    r.peerGenerated !== undefined ? `peer generated ${r.peerGenerated}` : '',
    r.peerCounted !== undefined ? `peer counted ${r.peerCounted}` : '',
    r.device ? `device TX ${r.device.txFrames} RX ${r.device.rxFrames} (rx no-buffer waits ${r.device.rxNoBuffers})` : '',
  ].filter(Boolean);
  return `${r.mpps.toFixed(4)} Mpps ${mode}; ${guest}; ${peer.join(', ')}`;
}

export async function benchTestpmd(o: TestpmdBenchOptions): Promise<TestpmdBenchResult> {
  const { engine, why } = chooseEngine(o.engine);
  const compare = o.compare ?? 'qemu-tap';
  o.progress(`engine ${engine}: ${why}`);
  if (engine === 'qemu-tcg') o.progress(`note: ${TCG_NOTE}`);
  await ensureHostTools(['ethtool'], o.progress);
  const image = await guestImage(o.imageDir, o.progress);
  const rig = new NetRig('pmd');
  const ours: TestpmdBootResult[] = [];
  const base: TestpmdBootResult[] = [];
  try {
    const ctx: TestpmdBootContext = {
      engine, image, rig, mode: o.mode, seconds: o.seconds, progress: o.progress, ...(o.onConsole ? { onConsole: o.onConsole } : {}),
    };
    for (let r = 0; r < o.runs; r++) {
      const order: GuestNic[] = compare === 'none' ? ['xdpvm'] : r % 2 === 0 ? ['xdpvm', 'qemu-tap'] : ['qemu-tap', 'xdpvm'];
      for (const nic of order) {
        o.progress(`  run ${r + 1}/${o.runs}: booting the guest on ${nicName(engine, nic)}`);
        const res = await testpmdBoot(ctx, nic);
        (nic === 'xdpvm' ? ours : base).push(res);
        o.progress(`  run ${r + 1}/${o.runs} ${res.nic} (boot to power-off ${res.bootSeconds.toFixed(1)} s): ${describe(o.mode, res)}`);
      }
    }
  } finally {
    rig.remove();
  }
  // Packets at this end: testpmd's count for the mode; at the other end: what the peer counted (txonly, io) or sent (rxonly).
  const thisEnd = (r: TestpmdBootResult): number => (o.mode === 'rxonly' ? r.testpmd.rxPackets : r.testpmd.txPackets);
  const otherEnd = (r: TestpmdBootResult): number => (o.mode === 'rxonly' ? r.peerGenerated ?? 0 : r.peerCounted ?? 0);
  const mpps = summarize(ours.map((r) => r.mpps));
  const baseMpps = base.length ? summarize(base.map((r) => r.mpps)) : zero;
  return {
    ...resultHeader(),
    benchmark: TESTPMD_BENCHMARK,
    workload: o.mode,
    params: { mode: o.mode, seconds: o.seconds, runs: o.runs, engine, compare, size: 64, guest: 'Debian 6.1 kernel, 1 vCPU, 512 MiB, DPDK 22.11 virtio PMD on uio_pci_generic' },
    mpps,
    baseline: { name: compare === 'none' ? 'none' : nicName(engine, 'qemu-tap'), mpps: baseMpps },
    ratio: base.length ? mpps.median / baseMpps.median : Number.NaN,
    mode: o.mode,
    engine,
    engineWhy: why,
    note: engine === 'qemu-tcg' ? TCG_NOTE : 'KVM guest',
    runs: ours.map((r, i) => {
      const b = base[i];
      return {
        run: i + 1,
        mpps: r.mpps,
        seconds: r.windowSeconds,
        bootSeconds: r.bootSeconds,
        packets: thisEnd(r),
        peerPackets: otherEnd(r),
        testpmd: r.testpmd,
        ...(r.peerGenerated !== undefined ? { peerGenerated: r.peerGenerated } : {}),
        ...(r.peerCounted !== undefined ? { peerCounted: r.peerCounted } : {}),
        ...(r.device ? { device: r.device } : {}),
        ...(b
          ? {
              baselineMpps: b.mpps,
              baselineSeconds: b.windowSeconds,
              baselinePackets: thisEnd(b),
              baselinePeerPackets: otherEnd(b),
              baselineTestpmd: b.testpmd,
            }
          : {}),
      };
    }),
  };
}
