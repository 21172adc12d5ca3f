// A vhost-user server on one end of a veth pair (AF_XDP backend in
// namespace a) and a test backend on the other end (namespace b), for the
// vhost-user tests.
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { AfXdpBackend } from '../../src/backend/af-xdp/af-xdp-backend';
import { inNetns, type VethPair } from '../../src/host/netns';
import { xsk } from '../../src/native/xsk';
import { VhostUserServer } from '../../src/vhost-user/server';
import { openBackend, openUnservicedBackend, withVeth } from './veth-backends';

export interface VhostUserRig {
  pair: VethPair;
  server: VhostUserServer;
  /** The server's backend (namespace a). */
  backend: AfXdpBackend;
  /** The peer's backend (namespace b). */
  peer: AfXdpBackend;
  socketPath: string;
  log: string[];
}

let serial = 0;

export function socketPathFor(tag: string): string {
  return path.join(tmpdir(), `xdpvm-vu-${tag}-${process.pid}-${serial++}.sock`);
}

/** Whether any XDP program is attached to the interface in that namespace. */
export function xdpAttached(netns: string, ifname: string): boolean {
  return inNetns(netns, () => {
    const idx = xsk.ifNameToIndex(ifname);
    return idx !== 0 && xsk.xdpQuery(idx).attached !== 0;
  });
}

export async function withVhostUser<T>(tag: string, opts: { queues?: number; config?: boolean }, fn: (rig: VhostUserRig) => Promise<T>): Promise<T> {
  const queues = opts.queues ?? 1;
  return withVeth(tag, { queues }, async (pair) => {
    // The server's sockets are serviced by its I/O workers only; the peer's from this thread (primed at open).
    const backend = openUnservicedBackend(pair.a.netns, `af-xdp,id=a,ifname=${pair.a.ifname},queues=${queues}`);
    const peer = openBackend(pair.b.netns, `af-xdp,id=b,ifname=${pair.b.ifname},queues=${queues}`);
    const socketPath = socketPathFor(tag);
    const log: string[] = [];
    const server = VhostUserServer.listen({ socketPath, backend, spinRounds: 200, config: opts.config ?? false, log: (l) => void log.push(l) });
    try {
      return await fn({ pair, server, backend, peer, socketPath, log });
    } finally {
      await server.close();
      backend.close();
      peer.close();
    }
  });
}
