// Network namespaces and veth pairs for tests and benchmarks: each run makes
// its own, named after the process, and removes them afterwards. Traffic only
// ever flows inside them.
import { execFileSync } from 'node:child_process';
import { xsk } from '../native/xsk';
import { sys } from '../native/sys';

function ip(args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

export interface VethPairOptions {
  /** Queues per side (numtxqueues/numrxqueues). */
  queues?: number;
  mtu?: number;
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

  /** Removes both namespaces (and with them the veth pair and anything attached). Idempotent. */
  remove(): void {
    if (this.removed) return;
    this.removed = true;
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
