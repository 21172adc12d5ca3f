// `xdpvm bench tcp`: a Linux guest runs iperf3 against an iperf3 server on
// the veth peer, guest -> peer (`iperf3 -c`) and peer -> guest (`-R`), once
// per run on a freshly booted guest. The guest's NIC is ours (QEMU TCG: our
// vhost-user server on AF_XDP; KVM: `xdpvm run`); the baseline of the same
// run is the same guest on QEMU's own tap backend bridged to the same veth.
// Bytes are counted at both ends: iperf3's sender and receiver, and the
// device's counters (ours only) and the peer interface's counters.
import { resultHeader, type BenchResult } from './report';
import { summarize, type Summary } from './stats';
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
  WAIT_LINK_UP,
  DRAIN_CONSOLE,
  type DeviceCounters,
  type Engine,
  type GuestImage,
  type GuestNic,
  type LinkCounters,
} from './linux-guest-rig';

export type Compare = 'qemu-tap' | 'none';

export interface TcpBenchOptions {
  /** iperf3 -t per direction. */
  seconds: number;
  runs: number;
  engine?: Engine;
  /** Same-run baseline: QEMU's tap backend (default), or none. */
  compare?: Compare;
  /** Image build/cache directory (out/ and cache/ under it). */
  imageDir?: string;
  progress: (line: string) => void;
  /** Every guest console line (debugging). */
  onConsole?: (line: string) => void;
}

export type Direction = 'fwd' | 'rev';

/** One iperf3 invocation and what each end counted. */
export interface TcpDirectionResult {
  /** Receiver's rate (Gbit/s). */
  gbps: number;
  seconds: number;
  senderBytes: number;
  receiverBytes: number;
  retransmits: number;
  /** Bytes the device moved in this direction (our NIC only: TX for fwd, RX for rev). */
  deviceBytes?: number;
  deviceFrames?: number;
  /** The peer interface: received bytes/packets (fwd) or sent (rev). */
  peerBytes: number;
  peerPackets: number;
}

export interface TcpBootResult {
  nic: string;
  bootSeconds: number;
  fwd: TcpDirectionResult;
  rev: TcpDirectionResult;
}

export interface TcpBenchResult extends BenchResult {
  /** guest -> peer, iperf3's receiver rate. */
  gbps: Summary;
  /** peer -> guest (iperf3 -R). */
  gbpsReverse: Summary;
  baseline: { name: string; mpps: Summary; gbps: Summary; gbpsReverse: Summary };
  engine: Engine;
  engineWhy: string;
  note: string;
}

const IPERF_PORT = 5201;
/** The result's `benchmark` (files: results/linux-tcp-DATE.json). */
export const TCP_BENCHMARK = 'linux';

/** The guest's command: wait for carrier, resolve the peer, then iperf3 both ways, each between markers. */
export function tcpGuestScript(peer: string, seconds: number): string {
  return [
    WAIT_LINK_UP,
    `ping -c1 -W5 ${peer} >/dev/null`,
    // -i 0: no interval reports, so the JSON stays small on the serial console.
    `for d in fwd rev;do r=;[ $d = rev ]&&r=-R;echo "XDPVM-IPERF $d begin";iperf3 -c ${peer} -p ${IPERF_PORT} -J -i 0 -t ${seconds} --connect-timeout 10000 $r;echo "XDPVM-IPERF $d end rc=$?";done`,
    DRAIN_CONSOLE,
  ].join('\n');
}

interface Iperf3Sum {
  bytes: number;
  seconds: number;
  bits_per_second: number;
  retransmits?: number;
}

interface Iperf3Json {
  error?: string;
  end?: { sum_sent?: Iperf3Sum; sum_received?: Iperf3Sum };
}

/** The iperf3 -J document of direction `d` from the console (kernel log lines that interleave are dropped). */
export function parseIperfSection(consoleText: string, d: Direction): { json: Iperf3Json; rc: number } {
  const text = consoleText.replace(/\r/g, '');
  const begin = text.indexOf(`XDPVM-IPERF ${d} begin\n`);
  const endRe = new RegExp(`^XDPVM-IPERF ${d} end rc=(\\d+)$`, 'm');
  const end = endRe.exec(text.slice(begin < 0 ? 0 : begin));
  if (begin < 0 || !end) throw new Error(`iperf3 ${d}: the guest printed no complete result (markers missing)`);
  const body = text
    .slice(begin + `XDPVM-IPERF ${d} begin\n`.length, begin + end.index)
    .split('\n')
    .filter((l) => !/^\[\s*\d+\.\d+\]/.test(l))
    .join('\n');
  let json: Iperf3Json;
  try {
    json = JSON.parse(body) as Iperf3Json;
  } catch {
    throw new Error(`iperf3 ${d}: output is not JSON (rc ${end[1]}):\n${body.slice(0, 2000)}`);
  }
  return { json, rc: Number(end[1]) };
}

interface Snapshot {
  device?: DeviceCounters;
  peer: LinkCounters;
}

function directionResult(d: Direction, json: Iperf3Json, before: Snapshot, after: Snapshot): TcpDirectionResult {
  if (json.error) throw new Error(`iperf3 ${d}: ${json.error}`);
  const sent = json.end?.sum_sent;
  const recv = json.end?.sum_received;
  if (!sent || !recv) throw new Error(`iperf3 ${d}: no end.sum_sent/sum_received in its JSON`);
  const r: TcpDirectionResult = {
    gbps: recv.bits_per_second / 1e9,
    seconds: recv.seconds,
    senderBytes: sent.bytes,
    receiverBytes: recv.bytes,
    retransmits: sent.retransmits ?? 0,
    peerBytes: d === 'fwd' ? after.peer.rxBytes - before.peer.rxBytes : after.peer.txBytes - before.peer.txBytes,
    peerPackets: d === 'fwd' ? after.peer.rxPackets - before.peer.rxPackets : after.peer.txPackets - before.peer.txPackets,
  };
  if (before.device && after.device) {
    r.deviceBytes = d === 'fwd' ? after.device.txBytes - before.device.txBytes : after.device.rxBytes - before.device.rxBytes;
    r.deviceFrames = d === 'fwd' ? after.device.txFrames - before.device.txFrames : after.device.rxFrames - before.device.rxFrames;
  }
  return r;
}

export interface TcpBootContext {
  engine: Engine;
  image: GuestImage;
  rig: NetRig;
  seconds: number;
  progress: (line: string) => void;
  onConsole?: (line: string) => void;
}

/** One boot: iperf3 server on the peer, the guest on `nic`, both directions. Everything it started is stopped. */
export async function tcpBoot(ctx: TcpBootContext, nic: GuestNic): Promise<TcpBootResult> {
  const { rig, engine } = ctx;
  const name = nicName(engine, nic);
  let device: VhostUserDevice | undefined;
  let server: ChildRun | undefined;
  let vm: ChildRun | undefined;
  let bridged = false;
  const bootLimitMs = 180_000 + 2 * (ctx.seconds + 30) * 1000;
  try {
    if (nic === 'xdpvm' && engine === 'qemu-tcg') device = VhostUserDevice.open(ctx.rig, 'tcp');
    if (nic === 'qemu-tap') {
      rig.bridgeTap();
      bridged = true;
    }
    server = ChildRun.spawn('ip', ['netns', 'exec', rig.b.netns, 'iperf3', '-s', '--forceflush', '-B', NetRig.PEER_IP, '-p', String(IPERF_PORT)], {
      label: 'iperf3 server',
      timeoutMs: bootLimitMs + 30_000,
    });
    await server.waitFor(/Server listening/, 10_000);
    const snaps = new Map<string, Snapshot>();
    const snap = (): Snapshot => {
      const c = device?.counters();
      return { ...(c ? { device: c } : {}), peer: rig.peerLink() };
    };
    vm = bootGuest({
      engine,
      nic,
      image: ctx.image,
      rig,
      ...(device ? { device } : {}),
      params: { cmd: tcpGuestScript(NetRig.PEER_IP, ctx.seconds), ip: `${NetRig.GUEST_IP}/${NetRig.PREFIX}` },
      timeoutMs: bootLimitMs,
      label: `guest (${name})`,
      onLine: (line) => {
        ctx.onConsole?.(line);
        // Counters at the markers delimit each direction.
        const m = /^XDPVM-IPERF (fwd|rev) (begin|end)/.exec(line);
        if (m) {
          snaps.set(`${m[1]} ${m[2]}`, snap());
          ctx.progress(`    ${name}: iperf3 ${m[1] === 'fwd' ? 'guest -> peer' : 'peer -> guest'} ${m[2] === 'begin' ? 'started' : 'done'}`);
        }
      },
    });
    const r = await guestResult(vm);
    if (!r.began || r.rc === undefined) {
      throw new Error(
        `guest (${name}) did not finish its command (${r.error ? `XDPVM-ERROR ${r.error}` : r.exit.timedOut ? 'time limit' : `exit ${r.exit.code}`}):\n${vm.tail(40)}`,
      );
    }
    const dir = (d: Direction): TcpDirectionResult => {
      const { json } = parseIperfSection(r.console, d);
      const before = snaps.get(`${d} begin`);
      const after = snaps.get(`${d} end`);
      if (!before || !after) throw new Error(`iperf3 ${d}: markers not seen live`);
      return directionResult(d, json, before, after);
    };
    return { nic: name, bootSeconds: r.exit.seconds, fwd: dir('fwd'), rev: dir('rev') };
  } finally {
    await vm?.stop();
    await server?.stop();
    await device?.close();
    if (bridged) rig.unbridgeTap();
  }
}

const zero: Summary = { median: 0, min: 0, max: 0 };

function say(d: TcpDirectionResult, label: string): string {
  return (
    `${label} ${d.gbps.toFixed(3)} Gbit/s (${d.seconds.toFixed(1)} s; sender ${d.senderBytes} B, receiver ${d.receiverBytes} B` +
    (d.deviceBytes !== undefined ? `, device ${d.deviceBytes} B` : '') +
    `, peer link ${d.peerBytes} B / ${d.peerPackets} packets)`
  );
}

export async function benchTcp(o: TcpBenchOptions): Promise<TcpBenchResult> {
  const { engine, why } = chooseEngine(o.engine);
  const compare = o.compare ?? 'qemu-tap';
  o.progress(`engine ${engine}: ${why}`);
  if (engine === 'qemu-tcg') o.progress(`note: ${TCG_NOTE}`);
  await ensureHostTools(['iperf3', 'ethtool'], o.progress);
  const image = await guestImage(o.imageDir, o.progress);
  const rig = new NetRig('tcp');
  const ours: TcpBootResult[] = [];
  const base: TcpBootResult[] = [];
  try {
    const ctx: TcpBootContext = { engine, image, rig, seconds: o.seconds, progress: o.progress, ...(o.onConsole ? { onConsole: o.onConsole } : {}) };
    for (let r = 0; r < o.runs; r++) {
      // Alternate which goes first so drift over time hits both equally.
      const order: GuestNic[] = compare === 'none' ? ['xdpvm'] : r % 2 === 0 ? ['xdpvm', 'qemu-tap'] : ['qemu-tap', 'xdpvm'];
      for (const nic of order) {
        o.progress(`  run ${r + 1}/${o.runs}: booting the guest on ${nicName(engine, nic)}`);
        const res = await tcpBoot(ctx, nic);
        (nic === 'xdpvm' ? ours : base).push(res);
        o.progress(`  run ${r + 1}/${o.runs} ${res.nic} (boot to power-off ${res.bootSeconds.toFixed(1)} s):`);
        o.progress(`    ${say(res.fwd, 'guest -> peer')}`);
        o.progress(`    ${say(res.rev, 'peer -> guest')}`);
      }
    }
  } finally {
    rig.remove();
  }
  // The packet rate is the peer's count of the guest's frames (guest -> peer), per second of iperf3.
  const mppsOf = (b: TcpBootResult): number => b.fwd.peerPackets / b.fwd.seconds / 1e6;
  const gbps = summarize(ours.map((b) => b.fwd.gbps));
  const baseGbps = base.length ? summarize(base.map((b) => b.fwd.gbps)) : zero;
  return {
    ...resultHeader(),
    benchmark: TCP_BENCHMARK,
    workload: 'tcp',
    params: { seconds: o.seconds, runs: o.runs, engine, compare, guest: 'Debian 6.1 kernel, 1 vCPU, 512 MiB', tool: 'iperf3 3.12', peerTxChecksum: 'off' },
    mpps: summarize(ours.map(mppsOf)),
    gbps,
    gbpsReverse: summarize(ours.map((b) => b.rev.gbps)),
    baseline: {
      name: compare === 'none' ? 'none' : nicName(engine, 'qemu-tap'),
      mpps: base.length ? summarize(base.map(mppsOf)) : zero,
      gbps: baseGbps,
      gbpsReverse: base.length ? summarize(base.map((b) => b.rev.gbps)) : zero,
    },
    ratio: base.length ? gbps.median / baseGbps.median : Number.NaN,
    engine,
    engineWhy: why,
    note: engine === 'qemu-tcg' ? TCG_NOTE : 'KVM guest',
    runs: ours.map((b, i) => {
      const bb = base[i];
      return {
        run: i + 1,
        gbps: b.fwd.gbps,
        gbpsReverse: b.rev.gbps,
        mpps: mppsOf(b),
        seconds: b.fwd.seconds,
        bootSeconds: b.bootSeconds,
        // Packets at both ends of guest -> peer: the device's TX frames and the peer's received packets.
        packets: b.fwd.deviceFrames ?? 0,
        peerPackets: b.fwd.peerPackets,
        fwd: b.fwd,
        rev: b.rev,
        ...(bb
          ? {
              baselineGbps: bb.fwd.gbps,
              baselineGbpsReverse: bb.rev.gbps,
              baselineMpps: mppsOf(bb),
              baselineSeconds: bb.fwd.seconds,
              baselinePeerPackets: bb.fwd.peerPackets,
              baselineFwd: bb.fwd,
              baselineRev: bb.rev,
            }
          : {}),
      };
    }),
  };
}
