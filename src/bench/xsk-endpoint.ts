// One end of a backend benchmark run, in its own process so each side has a
// core and a clean heap: the TypeScript backend or the raw C loop, sending or
// receiving on one queue for a fixed time. Prints one JSON line.
//   node xsk-endpoint.js '{"netns":..., "ifname":..., "impl":"ts"|"c", "direction":"tx"|"rx", ...}'
import { AfXdpBackend } from '../backend/af-xdp/af-xdp-backend';
import { XdpAttachment, type XdpMode } from '../backend/af-xdp/xdp-attachment';
import { XskSocket } from '../backend/af-xdp/xsk-socket';
import { inNetns } from '../host/netns';
import { pinThisThread, threadSchedNs } from '../host/cpu-affinity';
import { xsk, type XskStatistics } from '../native/xsk';
import { rawLoopNative } from '../native/raw-loop';
import { rxLoop, txLoop, type LoopResult } from './backend-loops';
import { udpFrame } from './udp-frame';
import { runJsonChild } from './json-child';
import { mapUpdateU32 } from '../bpf/syscalls';

export interface EndpointParams {
  netns: string;
  ifname: string;
  impl: 'ts' | 'c';
  /** fwd (C only): receive and send each frame back with its MACs swapped. */
  direction: EndpointDirection;
  xdpMode: XdpMode;
  seconds: number;
  size: number;
  batch: number;
  queue: number;
  /** Pin the sending/receiving thread to this host CPU. */
  cpu?: number;
  /**
   * Receivers of a multi-queue run (runReceivers): the XDP program is the parent's, its XSKMAP this process's
   * fd 3; the socket goes into slot `queue` there instead of attaching a program of its own.
   */
  sharedMap?: boolean;
}

/** The fd a sharedMap endpoint finds the parent's XSKMAP at. */
const SHARED_MAP_FD = 3;

export type EndpointDirection = 'tx' | 'rx' | 'fwd';

export interface EndpointResult extends LoopResult {
  impl: 'ts' | 'c';
  direction: EndpointDirection;
  mode: XdpMode;
  counters?: Record<string, number>;
  /** The kernel's view of the socket (XDP_STATISTICS): where frames were lost. */
  kernel: XskStatistics;
  /** CPU time of the loop's thread over the run (user + system, softirq work it ran included), in seconds. */
  cpuSeconds?: number;
}

const RING = 2048;
const FRAME = 4096;
const FRAMES = RING * 4;

function runTs(p: EndpointParams): EndpointResult {
  if (p.direction === 'fwd') throw new RangeError('the fwd endpoint is C only (the TypeScript forwarder is the device: bench device --mode io-fwd)');
  const backend = inNetns(p.netns, () =>
    AfXdpBackend.open(
      { id: 'bench', ifname: p.ifname, mode: p.xdpMode, forceCopy: false, queues: 1, startQueue: p.queue, inhibit: false },
      { frameSize: FRAME, frameCount: FRAMES, ringSize: RING },
    ),
  );
  try {
    const q = backend.queues[0]!;
    const r = p.direction === 'tx' ? txLoop(q, udpFrame(p.size), p.batch, p.seconds) : rxLoop(q, p.batch, p.seconds);
    return { ...r, impl: 'ts', direction: p.direction, mode: backend.mode, counters: q.counters.snapshot(), kernel: xsk.statistics(q.socket.fd) };
  } finally {
    backend.close();
  }
}

function runC(p: EndpointParams): EndpointResult {
  return inNetns(p.netns, () => {
    const ifindex = xsk.ifNameToIndex(p.ifname);
    // A receiver (or forwarder) needs the redirect program; a sender does not.
    const attachment = p.direction !== 'tx' && !p.sharedMap ? XdpAttachment.attach(p.ifname, ifindex, p.xdpMode, p.queue + 1) : undefined;
    try {
      const sock = XskSocket.open({
        ifname: p.ifname, ifindex, queueId: p.queue, frameSize: FRAME, frameCount: FRAMES,
        fillSize: RING, completionSize: RING, rxSize: RING, txSize: RING, copyMode: 'default',
      });
      try {
        attachment?.addSocket(p.queue, sock.fd);
        if (p.sharedMap) mapUpdateU32(SHARED_MAP_FD, p.queue, sock.fd);
        const r = rawLoopNative.rawLoop({
          fd: sock.fd, umem: sock.umem, frameSize: FRAME, mode: p.direction, batch: p.batch,
          seconds: p.seconds, packet: udpFrame(p.size), rings: sock.rawRings(),
        });
        return { ...r, impl: 'c', direction: p.direction, mode: attachment?.mode ?? p.xdpMode, kernel: xsk.statistics(sock.fd) };
      } finally {
        sock.close();
      }
    } finally {
      attachment?.detach();
    }
  });
}

/** This script, for callers that spawn it themselves. */
export const XSK_ENDPOINT_SCRIPT = __filename;

/** Runs one endpoint in its own process and returns its result; `what` names it in errors. */
export function runEndpoint(p: EndpointParams, what = `endpoint ${p.impl} ${p.direction}`): Promise<EndpointResult> {
  return runJsonChild<EndpointResult>(__filename, p, what);
}

/**
 * Raw C receivers (rx or fwd) on several queues of one interface at once, each in its own process: an interface takes one
 * XDP program, so this process attaches it and hands its XSKMAP to every receiver, and detaches it after.
 */
export async function runCReceivers(ps: readonly EndpointParams[]): Promise<EndpointResult[]> {
  if (ps.length === 1) return [await runEndpoint(ps[0]!, `C ${ps[0]!.direction} queue ${ps[0]!.queue}`)];
  const first = ps[0]!;
  const attachment = inNetns(first.netns, () =>
    XdpAttachment.attach(first.ifname, xsk.ifNameToIndex(first.ifname), first.xdpMode, Math.max(...ps.map((p) => p.queue)) + 1),
  );
  try {
    return await Promise.all(
      ps.map((p) => runJsonChild<EndpointResult>(__filename, { ...p, impl: 'c', sharedMap: true }, `C ${p.direction} queue ${p.queue}`, [attachment.mapFd])),
    );
  } finally {
    attachment.detach();
  }
}

if (require.main === module) {
  const p = JSON.parse(process.argv[2] ?? '{}') as EndpointParams;
  if (p.cpu !== undefined) pinThisThread(p.cpu, 'benchmark endpoint');
  const cpu0 = threadSchedNs('self').run;
  const r: EndpointResult = p.impl === 'ts' ? runTs(p) : runC(p);
  r.cpuSeconds = (threadSchedNs('self').run - cpu0) / 1e9;
  process.stdout.write(`${JSON.stringify(r)}\n`);
}
