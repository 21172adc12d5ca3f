// Shared plumbing of the Linux-guest benchmarks (`bench tcp`, `bench testpmd`)
// and their tests: which engine boots the guest image, a veth pair whose A end
// is the guest's NIC (our vhost-user server on AF_XDP, or for the same-run
// baseline QEMU's own tap backend bridged to it) and whose B end is the peer,
// and supervised child processes (QEMU, iperf3, generators) that always have
// a time limit and are always stopped.
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { AfXdpBackend } from '../backend/af-xdp/af-xdp-backend';
import { parseAfXdpOptions } from '../backend/af-xdp/af-xdp-options';
import { inNetns, VethPair } from '../host/netns';
import { guestKernelCmdline, parseGuestConsole, type GuestParams, type GuestResult } from '../guest-build/linux/guest-console';
import { buildLinuxImage } from '../guest-build/linux/linux-image';
import { ensureQemu, tcgQemuArgs } from '../harness/qemu-tcg';
import { detectPvm, type PvmStatus } from '../kvm/pvm';
import { VhostUserServer } from '../vhost-user/server';

// ---------------------------------------------------------------- engines

export type Engine = 'qemu-tcg' | 'kvm';
export const ENGINES: readonly Engine[] = ['qemu-tcg', 'kvm'];

/** `--engine kvm` asked for on a host where the Linux guest cannot run under KVM. */
export class EngineError extends Error {}

/** Why this host cannot boot the Linux guest under KVM, or undefined when it can. */
export function kvmUnavailableReason(s: PvmStatus = detectPvm()): string | undefined {
  if (!s.kvmDevice) {
    return s.pvm
      ? 'there is no /dev/kvm: this kernel is itself a kvm-pvm guest (kvm_pvm does not bind inside one)'
      : 'there is no /dev/kvm on this host';
  }
  // shared/docs/machines.md: under PVM guest ring 0 is emulated and a Linux kernel stops at its int3 self-test.
  if (s.pvm) return 'this is a kvm-pvm host: guest ring 0 runs in KVM\'s instruction emulator and a Linux kernel cannot boot there';
  return undefined;
}

/** The engine to use: the one asked for (an EngineError if KVM cannot work here), else KVM where it can, else QEMU TCG. */
export function chooseEngine(requested?: Engine, status: PvmStatus = detectPvm()): { engine: Engine; why: string } {
  const noKvm = kvmUnavailableReason(status);
  if (requested === 'kvm') {
    if (noKvm) throw new EngineError(`--engine kvm: ${noKvm}; use --engine qemu-tcg (QEMU's software CPU) on this host`);
    return { engine: 'kvm', why: 'asked for; /dev/kvm is usable' };
  }
  if (requested === 'qemu-tcg') return { engine: 'qemu-tcg', why: 'asked for' };
  if (noKvm) return { engine: 'qemu-tcg', why: `default here because ${noKvm}` };
  return { engine: 'kvm', why: 'default: /dev/kvm is usable' };
}

export const TCG_NOTE =
  'QEMU TCG runs the guest on a software CPU: these figures measure the emulator as much as the device and are no performance claims';

// ---------------------------------------------------------------- host tools and the image

/** Runs a command to completion with a time limit (SIGKILL when it is over); resolves with stdout. */
export function runLimited(cmd: string, args: readonly string[], timeoutMs: number, env?: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 16 << 20, encoding: 'utf8', env: env ?? process.env }, (err, stdout, stderr) => {
      if (err) {
        const why = err.killed ? `killed after ${timeoutMs / 1000} s` : `${err.message.split('\n')[0]}`;
        reject(new Error(`${cmd} ${args.join(' ')}: ${why}${stderr.trim() ? `\n${stderr.trim().split('\n').slice(-6).join('\n')}` : ''}`));
      } else resolve(stdout);
    });
  });
}

/** Synchronous `ip ...` (or any short command) with a time limit. */
export function runSync(cmd: string, args: readonly string[], timeoutMs = 10_000): string {
  return execFileSync(cmd, args, { encoding: 'utf8', timeout: timeoutMs, killSignal: 'SIGKILL', stdio: ['ignore', 'pipe', 'pipe'] });
}

const HOST_TOOLS: Record<string, { bin: string; pkg: string }> = {
  iperf3: { bin: '/usr/bin/iperf3', pkg: 'iperf3' },
  ethtool: { bin: '/usr/sbin/ethtool', pkg: 'ethtool' },
  ping: { bin: '/usr/bin/ping', pkg: 'iputils-ping' },
};

/** Installs the Debian packages of the host tools that are missing (root only), and QEMU. */
export async function ensureHostTools(names: ReadonlyArray<keyof typeof HOST_TOOLS>, progress: (line: string) => void): Promise<void> {
  await ensureQemu(progress);
  const missing = names.filter((n) => !existsSync(HOST_TOOLS[n]!.bin)).map((n) => HOST_TOOLS[n]!.pkg);
  if (missing.length === 0) return;
  if (process.getuid?.() !== 0) throw new Error(`missing host tools: install the Debian packages ${missing.join(' ')} (as root)`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = ['install', '-y', '-q', '--no-install-recommends', ...missing];
  progress(`installing ${missing.join(' ')} (apt-get)`);
  try {
    await runLimited('apt-get', install, 300_000, env);
  } catch {
    // A fresh machine has no package lists yet.
    await runLimited('apt-get', ['update', '-q'], 300_000, env);
    await runLimited('apt-get', install, 300_000, env);
  }
}

export interface GuestImage {
  kernel: string;
  initrd: string;
}

/** The Linux guest image, built (or found up to date) under `imageDir` (out/ and cache/), else in the default place. */
export async function guestImage(imageDir: string | undefined, progress: (line: string) => void): Promise<GuestImage> {
  const img = await buildLinuxImage({
    ...(imageDir !== undefined ? { outDir: path.join(imageDir, 'out'), cacheDir: path.join(imageDir, 'cache') } : {}),
    progress: (l) => progress(`[image] ${l}`),
  });
  return { kernel: img.kernel, initrd: img.initrd };
}

// ---------------------------------------------------------------- supervised children

export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Killed because its time limit ran out. */
  timedOut: boolean;
  seconds: number;
}

export interface ChildRunOptions {
  /** What to call it in errors. */
  label: string;
  /** Hard limit: SIGKILL after this long. */
  timeoutMs: number;
  /** Every complete output line (stdout and stderr, no CR). */
  onLine?: (line: string) => void;
}

interface Waiter {
  re: RegExp;
  resolve: (m: RegExpExecArray) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

/** A child process whose output is kept and watched, killed at its time limit or on stop(). */
export class ChildRun {
  /** Children still running (for the signal clean-up). */
  static readonly live = new Set<ChildRun>();
  private text = '';
  private partial = '';
  private readonly waiters = new Set<Waiter>();
  private exit: ChildExit | undefined;
  readonly exited: Promise<ChildExit>;
  readonly pid: number | undefined;

  private constructor(private readonly child: ChildProcess, private readonly o: ChildRunOptions) {
    this.pid = child.pid;
    ChildRun.live.add(this);
    const t0 = Date.now();
    let timedOut = false;
    const hard = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, o.timeoutMs);
    const take = (d: Buffer): void => {
      const s = d.toString('utf8').replace(/\r/g, '');
      this.text += s;
      const lines = (this.partial + s).split('\n');
      this.partial = lines.pop()!;
      for (const l of lines) o.onLine?.(l);
      this.checkWaiters();
    };
    child.stdout?.on('data', take);
    child.stderr?.on('data', take);
    this.exited = new Promise((resolve) => {
      const done = (code: number | null, signal: NodeJS.Signals | null): void => {
        clearTimeout(hard);
        ChildRun.live.delete(this);
        if (this.exit) return;
        if (this.partial) o.onLine?.(this.partial);
        this.exit = { code, signal, timedOut, seconds: (Date.now() - t0) / 1000 };
        for (const w of this.waiters) {
          clearTimeout(w.timer);
          w.reject(new Error(`${o.label} ended (${signal ?? `exit ${code}`}${timedOut ? ', time limit' : ''}) before printing ${w.re}\n${this.tail()}`));
        }
        this.waiters.clear();
        resolve(this.exit);
      };
      child.on('close', done);
      child.on('error', (e) => {
        this.text += `\n[${o.label}: ${e.message}]\n`;
        done(null, null);
      });
    });
  }

  static spawn(cmd: string, args: readonly string[], o: ChildRunOptions): ChildRun {
    return new ChildRun(spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] }), o);
  }

  /** Everything printed so far. */
  get output(): string {
    return this.text;
  }

  get running(): boolean {
    return this.exit === undefined;
  }

  /** The last lines of output (for error messages). */
  tail(lines = 30): string {
    return this.text.split('\n').slice(-lines).join('\n');
  }

  /** Resolves with the first match of `re` in the output (complete lines only); rejects on exit or after `timeoutMs`. */
  waitFor(re: RegExp, timeoutMs: number): Promise<RegExpExecArray> {
    const hit = this.match(re);
    if (hit) return Promise.resolve(hit);
    if (this.exit) return Promise.reject(new Error(`${this.o.label} has ended; ${re} never came\n${this.tail()}`));
    return new Promise((resolve, reject) => {
      const w: Waiter = {
        re,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters.delete(w);
          reject(new Error(`${this.o.label}: no ${re} within ${timeoutMs / 1000} s\n${this.tail()}`));
        }, timeoutMs),
      };
      this.waiters.add(w);
    });
  }

  private match(re: RegExp): RegExpExecArray | null {
    const end = this.text.lastIndexOf('\n');
    return end < 0 ? null : new RegExp(re.source, re.flags.replace('g', '')).exec(this.text.slice(0, end + 1));
  }

  private checkWaiters(): void {
    for (const w of this.waiters) {
      const m = this.match(w.re);
      if (!m) continue;
      clearTimeout(w.timer);
      this.waiters.delete(w);
      w.resolve(m);
    }
  }

  signal(sig: NodeJS.Signals): void {
    if (this.exit === undefined) this.child.kill(sig);
  }

  /** SIGTERM, then SIGKILL if it is still there after `graceMs`; resolves when it has gone. */
  async stop(graceMs = 3000): Promise<ChildExit> {
    if (this.exit) return this.exit;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    const e = await this.exited;
    clearTimeout(timer);
    return e;
  }
}

export interface GuestRun extends GuestResult {
  console: string;
  exit: ChildExit;
}

/** The guest's console result once its VM process has ended. */
export async function guestResult(vm: ChildRun): Promise<GuestRun> {
  const exit = await vm.exited;
  return { ...parseGuestConsole(vm.output), console: vm.output, exit };
}

// ---------------------------------------------------------------- the network

export interface LinkCounters {
  rxBytes: number;
  rxPackets: number;
  txBytes: number;
  txPackets: number;
}

interface IpLinkStats {
  stats64?: { rx: { bytes: number; packets: number }; tx: { bytes: number; packets: number } };
}

/**
 * The veth pair of a Linux-guest run: A (namespace a) carries the guest's
 * NIC, B (namespace b) is the peer at PEER_IP. Addresses are in the
 * benchmarking range (RFC 2544), and only ever inside these namespaces.
 */
export class NetRig {
  static readonly PEER_IP = '198.18.1.1';
  static readonly GUEST_IP = '198.18.1.2';
  static readonly PREFIX = 24;
  static readonly GUEST_MAC = '52:54:00:12:34:56';
  static readonly TAP = 'xt0';
  static readonly BRIDGE = 'xb0';
  /** Rigs not yet removed (for the signal clean-up). */
  static readonly live = new Set<NetRig>();
  readonly pair: VethPair;
  private tapMade = false;

  /** `mtu`: both ends' MTU (default the kernel's, 1500). */
  constructor(tag: string, opts: { mtu?: number } = {}) {
    this.pair = new VethPair(tag, opts.mtu !== undefined ? { mtu: opts.mtu } : {});
    NetRig.live.add(this);
    try {
      runSync('ip', ['-n', this.pair.b.netns, 'addr', 'add', `${NetRig.PEER_IP}/${NetRig.PREFIX}`, 'dev', this.pair.b.ifname]);
      // The peer's stack would hand AF_XDP TCP/UDP frames with CHECKSUM_PARTIAL, i.e. a checksum field
      // holding only the pseudo-header sum (veth never completes it, XDP sees the raw skb), and the
      // guest drops them. A real wire never carries such frames: make the peer compute checksums.
      this.peerExec(['ethtool', '-K', this.pair.b.ifname, 'tx', 'off']);
    } catch (e) {
      this.remove();
      throw e;
    }
  }

  get a(): { netns: string; ifname: string } {
    return this.pair.a;
  }

  get b(): { netns: string; ifname: string } {
    return this.pair.b;
  }

  /** Runs a short command in the peer's namespace. */
  peerExec(args: readonly string[], timeoutMs = 10_000): string {
    return runSync('ip', ['netns', 'exec', this.pair.b.netns, ...args], timeoutMs);
  }

  private link(netns: string, ifname: string): LinkCounters {
    const j = JSON.parse(runSync('ip', ['-n', netns, '-j', '-s', 'link', 'show', 'dev', ifname])) as IpLinkStats[];
    const s = j[0]?.stats64;
    if (!s) throw new Error(`ip -s link: no counters for ${ifname} in ${netns}`);
    return { rxBytes: s.rx.bytes, rxPackets: s.rx.packets, txBytes: s.tx.bytes, txPackets: s.tx.packets };
  }

  /** The peer interface's counters (`ip -s link`). */
  peerLink(): LinkCounters {
    return this.link(this.pair.b.netns, this.pair.b.ifname);
  }

  /**
   * For the baseline: a tap in namespace a, bridged with A, for QEMU's own
   * virtio-net backend. Only while no XDP program is on A (it would take every frame first).
   */
  bridgeTap(): void {
    const ns = this.pair.a.netns;
    if (!this.tapMade) {
      runSync('ip', ['-n', ns, 'tuntap', 'add', 'dev', NetRig.TAP, 'mode', 'tap']);
      runSync('ip', ['-n', ns, 'link', 'add', NetRig.BRIDGE, 'type', 'bridge', 'forward_delay', '0', 'stp_state', '0']);
      for (const dev of [NetRig.TAP, NetRig.BRIDGE]) {
        // No IPv6: the stack's own solicitations would reach the guest and the peer.
        runSync('ip', ['netns', 'exec', ns, 'sysctl', '-qw', `net.ipv6.conf.${dev}.disable_ipv6=1`]);
      }
      runSync('ip', ['-n', ns, 'link', 'set', NetRig.TAP, 'master', NetRig.BRIDGE]);
      runSync('ip', ['-n', ns, 'link', 'set', NetRig.TAP, 'up']);
      runSync('ip', ['-n', ns, 'link', 'set', NetRig.BRIDGE, 'up']);
      this.tapMade = true;
    }
    runSync('ip', ['-n', ns, 'link', 'set', this.pair.a.ifname, 'master', NetRig.BRIDGE]);
  }

  unbridgeTap(): void {
    if (this.tapMade) runSync('ip', ['-n', this.pair.a.netns, 'link', 'set', this.pair.a.ifname, 'nomaster']);
  }

  /** Removes both namespaces and everything in them. Idempotent. */
  remove(): void {
    NetRig.live.delete(this);
    this.pair.remove();
  }
}

/**
 * For the commands: on SIGINT/SIGTERM kill the children (QEMU, iperf3,
 * generators) and remove the namespaces before exiting; the kernel detaches
 * this process's XDP programs and closes its sockets as it exits.
 */
export function cleanUpOnSignals(): () => void {
  let cleaning = false;
  const on = (sig: NodeJS.Signals): void => {
    // A second signal (timeout(1) signals its whole process group too) must not cut the clean-up short.
    if (cleaning) return;
    cleaning = true;
    process.stderr.write(`${sig}: stopping ${ChildRun.live.size} child process(es), removing ${NetRig.live.size} namespace pair(s)\n`);
    for (const c of ChildRun.live) c.signal('SIGKILL');
    for (const r of NetRig.live) r.remove();
    for (const sock of VhostUserDevice.liveSockets) rmSync(sock, { force: true });
    process.exit(sig === 'SIGINT' ? 130 : 143);
  };
  process.on('SIGINT', on);
  process.on('SIGTERM', on);
  return () => {
    process.off('SIGINT', on);
    process.off('SIGTERM', on);
  };
}

// ---------------------------------------------------------------- our device

export interface DeviceCounters {
  txFrames: number;
  txBytes: number;
  rxFrames: number;
  rxBytes: number;
  rxNoBuffers: number;
  rxDiscarded: number;
}

/** Our vhost-user server in this process, its AF_XDP backend on A: the guest's NIC under QEMU. */
export class VhostUserDevice {
  /** Sockets of servers not yet closed (for the signal clean-up). */
  static readonly liveSockets = new Set<string>();

  private constructor(
    readonly server: VhostUserServer,
    readonly backend: AfXdpBackend,
    readonly socketPath: string,
    /** The server's log lines (connections, refusals). */
    readonly log: string[],
  ) {}

  static open(rig: NetRig, tag: string): VhostUserDevice {
    const backend = inNetns(rig.a.netns, () => AfXdpBackend.open(parseAfXdpOptions(`af-xdp,id=n0,ifname=${rig.a.ifname}`)));
    const socketPath = path.join(tmpdir(), `xdpvm-${tag}-${process.pid}-${Date.now()}.sock`);
    const log: string[] = [];
    try {
      const dev = new VhostUserDevice(VhostUserServer.listen({ socketPath, backend, log: (l) => void log.push(l) }), backend, socketPath, log);
      VhostUserDevice.liveSockets.add(socketPath);
      return dev;
    } catch (e) {
      backend.close();
      throw e;
    }
  }

  /** Counters of queue pair 0 (cumulative over connections), once a front end has started it. */
  counters(): DeviceCounters | undefined {
    const c = this.server.runner.counters(0);
    if (!c) return undefined;
    return { txFrames: c.txFrames, txBytes: c.txBytes, rxFrames: c.rxFrames, rxBytes: c.rxBytes, rxNoBuffers: c.rxNoBuffers, rxDiscarded: c.rxDiscarded };
  }

  async close(): Promise<void> {
    try {
      await this.server.close();
    } finally {
      this.backend.close();
      VhostUserDevice.liveSockets.delete(this.socketPath);
    }
  }
}

// ---------------------------------------------------------------- booting the guest

export type GuestNic = 'xdpvm' | 'qemu-tap';

export interface BootSpec {
  engine: Engine;
  /** xdpvm: our device (vhost-user server under QEMU TCG, the VMM's own under KVM); qemu-tap: QEMU's backend, the baseline. */
  nic: GuestNic;
  image: GuestImage;
  /** Where the guest's NIC is: the A end. */
  rig: Pick<NetRig, 'a'>;
  params: GuestParams;
  /** For nic xdpvm under qemu-tcg. */
  device?: VhostUserDevice;
  memoryMb?: number;
  /** host_mtu= of the guest's virtio-net-pci (QEMU's, or xdpvm run's): the MTU it offers (VIRTIO_NET_F_MTU). */
  hostMtu?: number;
  timeoutMs: number;
  label: string;
  onLine?: (line: string) => void;
}

const QEMU_BIN = existsSync('/usr/bin/qemu-system-x86_64') ? '/usr/bin/qemu-system-x86_64' : 'qemu-system-x86_64';
/** bin/xdpvm of this checkout (dist/src/bench -> repository root). */
export const XDPVM_BIN = path.resolve(__dirname, '..', '..', '..', 'bin', 'xdpvm');

/** The command line that boots the guest as `spec` says (command first). */
export function bootCommand(spec: BootSpec): { cmd: string; args: string[] } {
  const memoryMb = spec.memoryMb ?? 512;
  const mac = NetRig.GUEST_MAC;
  const mtu = spec.hostMtu !== undefined ? `,host_mtu=${spec.hostMtu}` : '';
  if (spec.engine === 'kvm' && spec.nic === 'xdpvm') {
    // Our VMM with its own virtio-net device on AF_XDP, in namespace a where the interface is.
    return {
      cmd: 'ip',
      args: [
        'netns', 'exec', spec.rig.a.netns, process.execPath, XDPVM_BIN, 'run',
        '-m', `${memoryMb}M`, '-kernel', spec.image.kernel, '-initrd', spec.image.initrd,
        '-append', guestKernelCmdline(spec.params),
        '-netdev', `af-xdp,id=n0,ifname=${spec.rig.a.ifname}`, '-device', `virtio-net-pci,netdev=n0,mac=${mac}${mtu}`,
      ],
    };
  }
  // vectors=0 (INTx) in both cases: QEMU 7.2's vhost-user virtio-net-pci crashes with MSI-X under TCG,
  // and the baseline gets the same device shape so that only the backend differs.
  const device = ['-device', `virtio-net-pci,netdev=n0,mac=${mac},vectors=0${mtu}`];
  const nic =
    spec.nic === 'xdpvm'
      ? [
          // vhost-user needs the guest's memory shared with the server.
          '-object', `memory-backend-memfd,id=mem,size=${memoryMb}M,share=on`, '-numa', 'node,memdev=mem',
          '-chardev', `socket,id=c0,path=${spec.device!.socketPath}`, '-netdev', 'vhost-user,id=n0,chardev=c0', ...device,
        ]
      : ['-netdev', `tap,id=n0,ifname=${NetRig.TAP},script=no,downscript=no,vhost=off`, ...device];
  const args = tcgQemuArgs({ kernel: spec.image.kernel, initrd: spec.image.initrd, memoryMb, ...spec.params, qemuArgs: ['-machine', 'q35', ...nic] });
  if (spec.engine === 'kvm') {
    const i = args.indexOf('-accel');
    args[i + 1] = 'kvm';
    args[args.indexOf('-cpu') + 1] = 'host';
  }
  // The tap is in namespace a; the vhost-user socket is reachable from anywhere.
  return spec.nic === 'qemu-tap' ? { cmd: 'ip', args: ['netns', 'exec', spec.rig.a.netns, QEMU_BIN, ...args] } : { cmd: QEMU_BIN, args };
}

/** After the guest's last word, how long its VM may take to go away by itself. */
const POWER_OFF_GRACE_MS = 15_000;

export function bootGuest(spec: BootSpec): ChildRun {
  if (spec.nic === 'xdpvm' && spec.engine === 'qemu-tcg' && !spec.device) throw new Error('bootGuest: qemu-tcg with our NIC needs the vhost-user device');
  const { cmd, args } = bootCommand(spec);
  let ending: NodeJS.Timeout | undefined;
  const vm: ChildRun = ChildRun.spawn(cmd, args, {
    label: spec.label,
    timeoutMs: spec.timeoutMs,
    onLine: (line) => {
      spec.onLine?.(line);
      // The guest is done: if its VM does not end by itself (a VMM without a power-off path), end it.
      if (ending === undefined && /^XDPVM-(END rc=\d+|ERROR )/.test(line)) {
        ending = setTimeout(() => void vm.stop(), POWER_OFF_GRACE_MS);
        ending.unref();
      }
    },
  });
  void vm.exited.then(() => clearTimeout(ending));
  return vm;
}

/** What to call a NIC in reports. */
export function nicName(engine: Engine, nic: GuestNic): string {
  if (nic === 'qemu-tap') return `QEMU tap (${engine === 'kvm' ? 'KVM' : 'TCG'})`;
  return engine === 'kvm' ? 'xdpvm run (AF_XDP)' : 'xdpvm vhost-user (AF_XDP)';
}

/**
 * Guest shell: wait (up to 60 s) until the guest's stack has answered `n` ICMP echo requests (InEchos in
 * /proc/net/snmp), then print `XDPVM-ECHOS-ANSWERED <count>`.
 */
export function waitEchosAnswered(n: number): string {
  return [
    `e(){ awk '/^Icmp:/{if(h){for(i=1;i<=NF;i++)if(n[i]=="InEchos")print $i;exit}for(i=1;i<=NF;i++)n[i]=$i;h=1}' /proc/net/snmp;}`,
    `n=0;until [ "$(e)" -ge ${n} ]||[ $n -ge 300 ];do sleep .2;n=$((n+1));done`,
    'echo "XDPVM-ECHOS-ANSWERED $(e)"',
  ].join('\n');
}

/** Guest shell: wait (up to 10 s) until eth0 reports carrier. */
export const WAIT_LINK_UP = 'i=0;until [ "$(cat /sys/class/net/eth0/operstate)" = up ]||[ $i -ge 100 ];do sleep .1;i=$((i+1));done';

/**
 * Guest shell: wait until the serial port has sent everything (its tx count in
 * /proc/tty/driver/serial stops moving). /init powers off right after the
 * command, and `poweroff -f` does not wait for the console to drain: without
 * this the last lines of a long output are lost.
 */
export const DRAIN_CONSOLE =
  "t(){ grep -o 'tx:[0-9]*' /proc/tty/driver/serial|head -1;};a=;b=$(t);n=0;while [ \"$a\" != \"$b\" ]&&[ $n -lt 50 ];do a=$b;sleep .2;b=$(t);n=$((n+1));done";

// A promise timer for the rig's users (the platform's, not one of our own).
export { setTimeout as sleep } from 'node:timers/promises';
