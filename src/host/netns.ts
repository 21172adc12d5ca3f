// Network namespaces and veth pairs for tests and benchmarks: each run makes
// its own, named after the process, and removes them afterwards. Traffic only
// ever flows inside them.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { xsk } from '../native/xsk';
import { sys } from '../native/sys';

function ip(args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Ids of the kernel's NAPI threads of devices named `ifname` (in any namespace). */
function napiThreads(ifname: string): number[] {
  const out: number[] = [];
  for (const pid of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(pid)) continue;
    try {
      if (readFileSync(`/proc/${pid}/comm`, 'utf8').startsWith(`napi/${ifname}-`)) out.push(Number(pid));
    } catch {
      // Gone meanwhile.
    }
  }
  return out;
}

export interface VethPairOptions {
  /** Queues per side (numtxqueues/numrxqueues). */
  queues?: number;
  mtu?: number;
}

/**
 * Pairs not yet removed. An exit that skips the owners' `finally` blocks (an uncaught error such as EPIPE on a
 * closed stdout, process.exit from a signal handler) still removes them: named namespaces outlive the process.
 */
const livePairs = new Set<VethPair>();
let exitHookInstalled = false;
function removeLivePairs(): void {
  for (const p of [...livePairs]) p.remove();
}

/** Two namespaces joined by a veth pair: `a.ifname` in `a.netns`, `b.ifname` in `b.netns`. */
export class VethPair {
  private static serial = 0;
  readonly a: { netns: string; ifname: string };
  readonly b: { netns: string; ifname: string };
  private removed = false;

  constructor(tag: string, opts: VethPairOptions = {}) {
    const id = `${process.pid}-${VethPair.serial++}`;
    this.a = { netns: `xdpvm-${tag}-a-${id}`, ifname: 'xv-a' };
    this.b = { netns: `xdpvm-${tag}-b-${id}`, ifname: 'xv-b' };
    const q = String(opts.queues ?? 1);
    livePairs.add(this);
    if (!exitHookInstalled) {
      process.on('exit', removeLivePairs);
      exitHookInstalled = true;
    }
    try {
      ip(['netns', 'add', this.a.netns]);
      ip(['netns', 'add', this.b.netns]);
      ip(['link', 'add', this.a.ifname, 'netns', this.a.netns, 'numtxqueues', q, 'numrxqueues', q, 'type', 'veth',
        'peer', 'name', this.b.ifname, 'netns', this.b.netns, 'numtxqueues', q, 'numrxqueues', q]);
      for (const side of [this.a, this.b]) {
        // No IPv6: the stack's own router solicitations would show up in the sockets.
        ip(['netns', 'exec', side.netns, 'sysctl', '-qw', `net.ipv6.conf.${side.ifname}.disable_ipv6=1`]);
        if (opts.mtu) ip(['-n', side.netns, 'link', 'set', side.ifname, 'mtu', String(opts.mtu)]);
        ip(['-n', side.netns, 'link', 'set', side.ifname, 'up']);
        ip(['-n', side.netns, 'link', 'set', 'lo', 'up']);
      }
    } catch (e) {
      this.remove();
      throw e;
    }
  }

  /**
   * Runs one side's NAPI polling in kernel threads of its own (/sys/class/net/DEV/threaded) pinned to `cpu`,
   * instead of in softirq on whichever CPU woke it. A veth's receive side (its XDP program) otherwise runs in
   * the sending thread's sendto: a benchmark's peer would charge its counting to the CPU of the code measured.
   * veth has NAPI only while an XDP program is attached: attach first. Returns the threads' ids.
   */
  threadNapi(side: 'a' | 'b', cpu: number): number[] {
    const s = this[side];
    const before = new Set(napiThreads(s.ifname));
    try {
      ip(['netns', 'exec', s.netns, 'sh', '-c', `echo 1 > /sys/class/net/${s.ifname}/threaded`]);
    } catch (e) {
      throw new Error(`${s.ifname}: the kernel refused threaded NAPI (no NAPI without an XDP program on a veth): ${(e as Error).message.split('\n')[0]}`);
    }
    // Kernel threads are named after the device, and names repeat across namespaces: ours are the new ones.
    const ours = napiThreads(s.ifname).filter((t) => !before.has(t));
    if (ours.length === 0) throw new Error(`${s.ifname}: no NAPI thread appeared (is an XDP program attached?)`);
    for (const t of ours) execFileSync('taskset', ['-pc', String(cpu), String(t)], { stdio: 'ignore' });
    return ours;
  }

  /** Removes both namespaces (and with them the veth pair and anything attached). Idempotent. */
  remove(): void {
    if (this.removed) return;
    this.removed = true;
    livePairs.delete(this);
    for (const ns of [this.a.netns, this.b.netns]) {
      try {
        ip(['netns', 'delete', ns]);
      } catch {
        // Not created.
      }
    }
  }
}

/**
 * Runs `fn` with the calling thread inside namespace `name` (only this
 * thread: sockets created there stay in that namespace afterwards).
 */
export function inNetns<T>(name: string, fn: () => T): T {
  const self = sys.netnsOpen('/proc/thread-self/ns/net');
  const target = sys.netnsOpen(`/run/netns/${name}`);
  try {
    sys.netnsEnter(target);
    try {
      return fn();
    } finally {
      sys.netnsEnter(self);
    }
  } finally {
    sys.close(target);
    sys.close(self);
  }
}

/** Names of this host's namespaces that start with `prefix` (for leak checks). */
export function listNetns(prefix = 'xdpvm-'): string[] {
  return ip(['netns', 'list'])
    .split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter((n) => n.startsWith(prefix));
}

/** The XDP program ids attached to an interface in a namespace. */
export function xdpState(netns: string, ifname: string): ReturnType<typeof xsk.xdpQuery> {
  return inNetns(netns, () => xsk.xdpQuery(xsk.ifNameToIndex(ifname)));
}
