// The PMD test guest booted by `xdpvm run` in a child process, inside a
// network namespace, with virtio-net on AF_XDP: what `xdpvm bench pmd` and
// the VMM's end-to-end tests drive. The child is the real CLI, so signals,
// exit status and tear-down are the user's.
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ensurePmdImage } from '../guest-build/pmd';
import { monotonicMs, parseBootTimeline, type BootTimelineJson } from '../vmm/boot-timeline';
import { parsePmdResult, type PmdResult } from './pmd-result';

export interface PmdVmOptions {
  netns: string;
  ifname: string;
  /** The guest's command line (guest-images/pmd/README.md). */
  append: string;
  cpus?: number;
  queues?: number;
  memory?: string;
  /** af-xdp mode= (default: auto). */
  xdpMode?: 'native' | 'skb';
  /** `xdpvm run -iopl`: 0 enters the guest as a PVM host runs ring 3 (port I/O by the TSS bitmap only). */
  iopl?: 0 | 3;
  /** `xdpvm run -accel hosted`: the vCPU is the PMD's hosted build, a process (no /dev/kvm needed). */
  accel?: 'kvm' | 'hosted';
  /** More `xdpvm run` options (before -netdev), e.g. -vcpu-cpus. */
  runArgs?: readonly string[];
  /** More -netdev af-xdp options, each as ",key=value" (e.g. ",guest-umem=on"). */
  netdevProps?: string;
  /** More virtio-net-pci properties, each as ",key=value". */
  deviceProps?: string;
  /** `xdpvm run -timeline`: the exit carries the VMM's boot timeline. */
  timeline?: boolean;
  /** SIGKILL after this long (a hung VMM must not hang its caller). */
  timeoutMs: number;
  /** Console and VMM lines as they arrive. */
  onOutput?: (chunk: string) => void;
}

export interface PmdVmExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The guest's serial console (the VMM's stdout). */
  console: string;
  /** The VMM's own messages. */
  stderr: string;
  result: PmdResult | undefined;
  /** The VMM's boot timeline (with the timeline option). */
  timeline: BootTimelineJson | undefined;
  /** CLOCK_MONOTONIC ms when this process spawned the VMM (`ip netns exec`, then node). */
  spawnedAtMs: number;
  wallMs: number;
  timedOut: boolean;
}

/** The user's entry point (bin/xdpvm), not the module behind it. */
const CLI = path.join(__dirname, '..', '..', '..', 'bin', 'xdpvm');

export class PmdVm {
  readonly exited: Promise<PmdVmExit>;
  private readonly child: ChildProcess;

  private constructor(o: PmdVmOptions, readonly argv: string[]) {
    const t0 = performance.now();
    const spawnedAtMs = monotonicMs();
    this.child = spawn('ip', ['netns', 'exec', o.netns, process.execPath, CLI, ...argv], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: vmmEnvironment(),
    });
    let out = '';
    let err = '';
    this.child.stdout!.on('data', (b: Buffer) => {
      const s = b.toString('latin1');
      out += s;
      o.onOutput?.(s);
    });
    this.child.stderr!.on('data', (b: Buffer) => {
      const s = b.toString('latin1');
      err += s;
      o.onOutput?.(s);
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      // Where each thread of the hung VMM was, for whoever reads the failure.
      if (this.child.pid !== undefined) err += `\n--- the VMM's threads when it was killed after ${o.timeoutMs} ms:\n${threadStates(this.child.pid)}`;
      this.child.kill('SIGKILL');
    }, o.timeoutMs);
    this.exited = new Promise((resolve) => {
      this.child.once('close', (code, signal) => {
        clearTimeout(timer);
        resolve({
          code, signal, console: out, stderr: err, result: parsePmdResult(out), timeline: parseBootTimeline(err), spawnedAtMs,
          wallMs: performance.now() - t0, timedOut,
        });
      });
    });
  }

  /** Boots the PMD guest (built first if stale) with one virtio-net device on `ifname`. */
  static start(o: PmdVmOptions): PmdVm {
    const kernel = ensurePmdImage();
    const queues = o.queues ?? 1;
    const netdev = [`af-xdp,id=n0,ifname=${o.ifname}`, `queues=${queues}`, ...(o.xdpMode ? [`mode=${o.xdpMode}`] : [])].join(',') + (o.netdevProps ?? '');
    const argv = [
      'run', '-m', o.memory ?? '64M', '-smp', String(o.cpus ?? 1), '-kernel', kernel, '-append', o.append,
      ...(o.iopl !== undefined ? ['-iopl', String(o.iopl)] : []),
      ...(o.accel === 'hosted' ? ['-accel', 'hosted'] : []),
      ...(o.timeline ? ['-timeline'] : []),
      ...(o.runArgs ?? []),
      '-netdev', netdev, '-device', `virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56${o.deviceProps ?? ''}`,
    ];
    return new PmdVm(o, argv);
  }

  /** The VMM's process id (`ip netns exec` execs it), while it runs. */
  get pid(): number | undefined {
    return this.child.pid;
  }

  signal(sig: NodeJS.Signals): void {
    // `ip netns exec` execs the VMM: the child's pid is the VMM's.
    this.child.kill(sig);
  }
}

/**
 * The VMM's environment: this one without NODE_EXTRA_CA_CERTS. Node 20 parses that bundle (and its own root
 * store) before any script runs, 60-100 ms of a boot on the development host; the VMM opens no TLS connection.
 * (No --enable-source-maps either: it reads and parses every module's map at load, and the CLI prints messages.)
 */
export function vmmEnvironment(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  return env;
}

/** One line per thread of `pid`: name, scheduler state, the syscall it is in and its kernel stack (Linux /proc; the stack needs root). */
export function threadStates(pid: number): string {
  const read = (f: string): string => {
    try {
      return readFileSync(f, 'utf8').trim();
    } catch {
      return '?';
    }
  };
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return `(process ${pid} is gone)\n`;
  }
  return tids
    .map((tid) => {
      const t = `/proc/${pid}/task/${tid}`;
      const state = /\) (\S)/.exec(read(`${t}/stat`))?.[1] ?? '?';
      const stack = read(`${t}/stack`).split('\n').slice(0, 6).map((l) => l.replace(/^\[<[0-9a-f]+>\] /, '')).join(' < ');
      return `${tid} ${read(`${t}/comm`)} state ${state} syscall ${read(`${t}/syscall`).split(' ').slice(0, 3).join(' ')} kernel ${stack}\n`;
    })
    .join('');
}
