// `xdpvm run` options, spelled as QEMU spells them:
//   -m 256M -smp 2 -kernel FILE [-initrd FILE] [-append "..."] [-iopl 0|3]
//   [-vcpu-cpus C0:C1:...] [-vcpu-nice N] [-accel kvm|hosted[,vcpu=FILE]]
//   -netdev af-xdp,id=n1,ifname=eth0[,...] -device virtio-net-pci,netdev=n1[,mac=52:54:00:12:34:56]
//     [,host_mtu=N][,rx_queue_size=N][,tx_queue_size=N][,iothread-vq-mapping=T0:T1:...][,io-cpus=C0:C1:...]
//     [,poll-max-ns=N][,poll-grow=N][,poll-shrink=N][,coalesce-us=N][,io-nice=N]
// Several netdev/device pairs are allowed. Every error is a RunOptionError
// that names the option (the CLI reports it as a usage error).
import { parseAfXdpOptions, type AfXdpOptions } from '../backend/af-xdp/af-xdp-options';
import { NetMtu } from 'virtio-spec-types';
import { parseMac } from '../virtio/net/mac';
import { availableParallelism } from 'node:os';
import type { IoThreadSettings } from './net/virtio-net-pci';
import { parseMemorySize } from './memory-layout';
import { threadMapping } from '../io/io-thread-protocol';
import { coalesceUsProblem } from '../io/shared-cpu-policy';

export interface RunNet {
  id: string;
  backend: AfXdpOptions;
  mac: Uint8Array;
  /** host_mtu=: the MTU the device offers (VIRTIO_NET_F_MTU); absent: the interface's. */
  hostMtu?: number;
  /** rx_queue_size= / tx_queue_size=: the largest receive / transmit queue the device offers (default 256, as QEMU). */
  queueSizes?: { rx?: number; tx?: number };
  io?: IoThreadSettings;
}

export interface RunOptions {
  memoryBytes: number;
  cpus: number;
  kernel: string;
  initrd?: string;
  append: string;
  nets: RunNet[];
  /**
   * RFLAGS.IOPL a bare-metal guest enters with (default 3). 0 enters it as a
   * PVM host runs ring 3 (IOPL is not kept there): port I/O then goes only
   * by the TSS I/O bitmap, so any host can check a guest against that.
   */
  iopl: 0 | 3;
  /** -timeline: print when each boot phase was reached (BootTimeline) when the run ends. */
  timeline: boolean;
  /** -vcpu-cpus C0:C1:...: host CPU of each vCPU's thread, by vCPU index. */
  vcpuCpus?: number[];
  /** -vcpu-nice N: niceness of the vCPU threads. */
  vcpuNice?: number;
  /**
   * -accel kvm (default) | hosted[,vcpu=FILE]: hosted runs each vCPU as a process executing the PMD test guest's
   * hosted build (FILE, default `pmd-hosted` beside -kernel), for hosts without /dev/kvm.
   */
  accel: { kind: 'kvm' } | { kind: 'hosted'; vcpu?: string };
}

const MAX_CPUS = 64;

/** A wrong `xdpvm run` option (or kernel/initrd combination); the message names the option. */
export class RunOptionError extends Error {}


function keyValues(spec: string, what: string): { head: string; kv: Map<string, string> } {
  const [head, ...rest] = spec.split(',');
  const kv = new Map<string, string>();
  for (const p of rest) {
    const eq = p.indexOf('=');
    if (eq <= 0) throw new RunOptionError(`${what}: '${p}' is not key=value`);
    const k = p.slice(0, eq);
    if (kv.has(k)) throw new RunOptionError(`${what}: '${k}' given twice`);
    kv.set(k, p.slice(eq + 1));
  }
  return { head: head ?? '', kv };
}

/** `C0:C1:...`: one host CPU per vCPU or I/O thread, each one this host has. */
function parseCpuList(v: string, what: string): number[] {
  const n = availableParallelism();
  return v.split(':').map((c) => {
    if (!/^\d+$/.test(c) || Number(c) >= n) throw new RunOptionError(`${what}: '${c}' is not a host CPU (0..${n - 1}); the list is CPU:CPU:..., one per ${what.includes('io-cpus') ? 'I/O thread' : 'vCPU'}`);
    return Number(c);
  });
}

function parseInteger(v: string, what: string, min: number, max: number): number {
  if (!/^-?\d+$/.test(v) || Number(v) < min || Number(v) > max) throw new RunOptionError(`${what}: '${v}' is not an integer in ${min}..${max}`);
  return Number(v);
}

/** The I/O-thread properties of -device virtio-net-pci (ours: QEMU's virtio-net has no I/O threads). */
function parseIoThreadSettings(kv: Map<string, string>): IoThreadSettings | undefined {
  const io: IoThreadSettings = {};
  const w = '-device virtio-net-pci';
  const mapping = kv.get('iothread-vq-mapping');
  // QEMU's virtio-blk takes a JSON list of {iothread, vqs}; here a pair's thread by index: 0:0 puts pairs 0 and 1 on thread 0.
  if (mapping !== undefined) io.threadOf = mapping.split(':').map((t) => parseInteger(t, `${w}: iothread-vq-mapping (one I/O thread index per queue pair, T0:T1:...)`, 0, 63));
  const cpus = kv.get('io-cpus');
  if (cpus !== undefined) io.cpus = parseCpuList(cpus, `${w}: io-cpus`);
  const pollNs = kv.get('poll-max-ns');
  // As QEMU's iothread poll-max-ns; kept in µs inside (the thread's clock checks are µs-grained).
  if (pollNs !== undefined) io.pollUs = parseInteger(pollNs, `${w}: poll-max-ns`, 0, 1e9) / 1000;
  // As QEMU's iothread poll-grow / poll-shrink (0: its defaults, double and reset to 0).
  const grow = kv.get('poll-grow');
  if (grow !== undefined) io.pollGrow = parseInteger(grow, `${w}: poll-grow`, 0, 1024);
  const shrink = kv.get('poll-shrink');
  if (shrink !== undefined) io.pollShrink = parseInteger(shrink, `${w}: poll-shrink`, 0, 1024);
  const coalesce = kv.get('coalesce-us');
  if (coalesce !== undefined) {
    io.coalesceUs = parseInteger(coalesce, `${w}: coalesce-us`, 0, 100000);
    const problem = coalesceUsProblem(io.coalesceUs);
    if (problem) throw new RunOptionError(`${w}: coalesce-us: ${problem}`);
  }
  const nice = kv.get('io-nice');
  if (nice !== undefined) io.nice = parseInteger(nice, `${w}: io-nice`, -20, 19);
  return Object.keys(io).length > 0 ? io : undefined;
}

export function parseRunOptions(argv: readonly string[]): RunOptions {
  let memoryBytes = 256 << 20;
  let cpus = 1;
  let kernel: string | undefined;
  let initrd: string | undefined;
  let append = '';
  let iopl: 0 | 3 = 3;
  let timeline = false;
  let vcpuCpus: number[] | undefined;
  let vcpuNice: number | undefined;
  let accel: RunOptions['accel'] = { kind: 'kvm' };
  let enableKvm = false;
  const netdevs = new Map<string, AfXdpOptions>();
  const devices: Array<{ netdev: string; mac?: Uint8Array; hostMtu?: number; queueSizes?: { rx?: number; tx?: number }; io?: IoThreadSettings }> = [];
  const seen = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const opt = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new RunOptionError(`${opt} needs a value`);
      return v;
    };
    const once = (): void => {
      if (seen.has(opt)) throw new RunOptionError(`${opt} given twice`);
      seen.add(opt);
    };
    switch (opt) {
      case '-m': {
        once();
        const v = value().replace(/^size=/, '');
        try {
          memoryBytes = parseMemorySize(v);
        } catch (e) {
          throw new RunOptionError(`-m: ${(e as Error).message}`);
        }
        if (memoryBytes < 16 << 20 || memoryBytes % (2 << 20) !== 0) throw new RunOptionError(`-m: memory must be a multiple of 2 MiB and at least 16 MiB (got '${v}')`);
        break;
      }
      case '-smp': {
        once();
        const v = value();
        const n = /^(?:cpus=)?(\d+)$/.exec(v.split(',')[0]!);
        if (!n) throw new RunOptionError(`-smp: '${v}' is not a vCPU count`);
        cpus = Number(n[1]);
        if (cpus < 1 || cpus > MAX_CPUS) throw new RunOptionError(`-smp: between 1 and ${MAX_CPUS} vCPUs (got ${cpus})`);
        break;
      }
      case '-kernel':
        once();
        kernel = value();
        break;
      case '-initrd':
        once();
        initrd = value();
        break;
      case '-append':
        once();
        append = value();
        break;
      case '-vcpu-cpus':
        once();
        vcpuCpus = parseCpuList(value(), '-vcpu-cpus');
        break;
      case '-vcpu-nice':
        once();
        vcpuNice = parseInteger(value(), '-vcpu-nice', -20, 19);
        break;
      case '-timeline':
        once();
        timeline = true;
        break;
      case '-iopl': {
        once();
        const v = value();
        if (v !== '0' && v !== '3') throw new RunOptionError(`-iopl: '${v}' is not 0 or 3`);
        iopl = v === '0' ? 0 : 3;
        break;
      }
      case '-netdev': {
        const spec = value();
        let o: AfXdpOptions;
        try {
          o = parseAfXdpOptions(spec);
        } catch (e) {
          throw new RunOptionError(`-netdev: ${(e as Error).message}`);
        }
        if (netdevs.has(o.id)) throw new RunOptionError(`-netdev: id '${o.id}' used twice`);
        netdevs.set(o.id, o);
        break;
      }
      case '-device': {
        const { head, kv } = keyValues(value(), '-device');
        if (head !== 'virtio-net-pci') throw new RunOptionError(`-device: only virtio-net-pci is supported (got '${head}')`);
        const known = ['netdev', 'mac', 'id', 'host_mtu', 'rx_queue_size', 'tx_queue_size', 'iothread-vq-mapping', 'io-cpus', 'poll-max-ns', 'poll-grow', 'poll-shrink', 'coalesce-us', 'io-nice'];
        for (const k of kv.keys()) if (!known.includes(k)) throw new RunOptionError(`-device virtio-net-pci: unknown property '${k}'`);
        const netdev = kv.get('netdev');
        if (!netdev) throw new RunOptionError('-device virtio-net-pci: netdev= is required');
        const mac = kv.get('mac');
        const io = parseIoThreadSettings(kv);
        const mtu = kv.get('host_mtu');
        const queueSizes = parseQueueSizes(kv);
        devices.push({
          netdev,
          ...(mac ? { mac: parseMac(mac, (why) => new RunOptionError(`-device virtio-net-pci: mac ${why}`)) } : {}),
          // As QEMU's virtio-net host_mtu (§5.1.4.1: 68..65535).
          ...(mtu !== undefined ? { hostMtu: parseInteger(mtu, '-device virtio-net-pci: host_mtu', NetMtu.MIN, NetMtu.MAX) } : {}),
          ...(queueSizes ? { queueSizes } : {}),
          ...(io ? { io } : {}),
        });
        break;
      }
      case '-nographic':
      case '-no-reboot':
        // Always so here: the console is stdio and a guest reset ends the run.
        break;
      case '-enable-kvm':
        enableKvm = true;
        break;
      case '-accel': {
        once();
        const { head, kv } = keyValues(value(), '-accel');
        for (const k of kv.keys()) if (k !== 'vcpu' || head !== 'hosted') throw new RunOptionError(`-accel ${head}: unknown property '${k}'`);
        if (head === 'kvm') accel = { kind: 'kvm' };
        else if (head === 'hosted') accel = { kind: 'hosted', ...(kv.has('vcpu') ? { vcpu: kv.get('vcpu')! } : {}) };
        else throw new RunOptionError(`-accel: '${head}' is not kvm or hosted`);
        break;
      }
      default:
        throw new RunOptionError(`unknown option '${opt}'`);
    }
  }
  if (!kernel) throw new RunOptionError('-kernel is required');
  const used = new Set<string>();
  const nets: RunNet[] = devices.map((d, i) => {
    const backend = netdevs.get(d.netdev);
    if (!backend) throw new RunOptionError(`-device virtio-net-pci: no -netdev with id '${d.netdev}'`);
    if (used.has(d.netdev)) throw new RunOptionError(`-device virtio-net-pci: netdev '${d.netdev}' is already used by another device`);
    used.add(d.netdev);
    const pairs = backend.queues;
    const w = `-device virtio-net-pci,netdev=${d.netdev}`;
    let threads = pairs;
    if (d.io?.threadOf) {
      try {
        threads = Math.max(...threadMapping(pairs, d.io.threadOf)) + 1;
      } catch (e) {
        throw new RunOptionError(`${w}: iothread-vq-mapping: ${(e as Error).message}`);
      }
    }
    if (d.io?.cpus && d.io.cpus.length > threads) throw new RunOptionError(`${w}: io-cpus names ${d.io.cpus.length} CPUs for ${threads} I/O thread(s)`);
    return {
      id: d.netdev,
      backend,
      mac: d.mac ?? Uint8Array.of(0x52, 0x54, 0x00, 0x12, 0x34, 0x56 + i),
      ...(d.hostMtu !== undefined ? { hostMtu: d.hostMtu } : {}),
      ...(d.queueSizes ? { queueSizes: d.queueSizes } : {}),
      ...(d.io ? { io: d.io } : {}),
    };
  });
  for (const id of netdevs.keys()) if (!used.has(id)) throw new RunOptionError(`-netdev '${id}' has no -device virtio-net-pci,netdev=${id}`);
  if (vcpuCpus && vcpuCpus.length > cpus) throw new RunOptionError(`-vcpu-cpus names ${vcpuCpus.length} CPUs for ${cpus} vCPU(s)`);
  if (accel.kind === 'hosted' && enableKvm) throw new RunOptionError('-accel hosted and -enable-kvm exclude each other');
  // A hosted vCPU is a Linux process: no privilege levels, so no IOPL to choose.
  if (accel.kind === 'hosted' && iopl !== 3) throw new RunOptionError('-iopl: not with -accel hosted (a hosted vCPU is a process; port I/O is a request to the VMM)');
  return {
    memoryBytes, cpus, kernel, ...(initrd !== undefined ? { initrd } : {}), append, nets, iopl, timeline, accel,
    ...(vcpuCpus ? { vcpuCpus } : {}),
    ...(vcpuNice !== undefined ? { vcpuNice } : {}),
  };
}

/** As QEMU's virtio-net rx_queue_size / tx_queue_size: a power of 2 from 256 to 1024 (VIRTQUEUE_MAX_SIZE). */
function parseQueueSizes(kv: Map<string, string>): { rx?: number; tx?: number } | undefined {
  const one = (key: 'rx_queue_size' | 'tx_queue_size'): number | undefined => {
    const v = kv.get(key);
    if (v === undefined) return undefined;
    const n = parseInteger(v, `-device virtio-net-pci: ${key}`, 256, 1024);
    if (n & (n - 1)) throw new RunOptionError(`-device virtio-net-pci: ${key} ${n} is not a power of 2 (256, 512 or 1024)`);
    return n;
  };
  const rx = one('rx_queue_size');
  const tx = one('tx_queue_size');
  return rx === undefined && tx === undefined ? undefined : { ...(rx !== undefined ? { rx } : {}), ...(tx !== undefined ? { tx } : {}) };
}
