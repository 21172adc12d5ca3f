// `xdpvm bench backend --mode txonly|rxonly`: the TypeScript AF_XDP backend
// against the raw C loop on the same veth pair, alternating run by run so
// that both see the same machine. Counts at both ends: for txonly the
// sender's completions and the peer's XDP counter; for rxonly the C
// generator's sent frames and the receiver's taken frames.
import { setTimeout as sleep } from 'node:timers/promises';
import type { BenchRunOptions } from './bench-run-options';
import { inNetns, VethPair } from '../host/netns';
import { xsk } from '../native/xsk';
import { pairedRatio, summarize } from './stats';
import { resultHeader, type BenchResult } from './report';
import { XdpCounter } from './xdp-counter';
import { runEndpoint, type EndpointResult } from './xsk-endpoint';

export interface BackendBenchOptions extends BenchRunOptions {
  mode: 'txonly' | 'rxonly';
  batch: number;
}

interface Run {
  impl: 'ts' | 'c';
  mpps: number;
  packets: number;
  peerPackets: number;
  seconds: number;
}

export async function benchBackend(o: BackendBenchOptions): Promise<BenchResult> {
  const pair = new VethPair('bench');
  const runs: Run[] = [];
  let counter: XdpCounter | undefined;
  try {
    if (o.mode === 'txonly') counter = inNetns(pair.b.netns, () => XdpCounter.attach(xsk.ifNameToIndex(pair.b.ifname), 'native'));
    for (let r = 0; r < o.runs; r++) {
      // Alternate which goes first so drift over time hits both equally.
      for (const impl of r % 2 === 0 ? (['ts', 'c'] as const) : (['c', 'ts'] as const)) {
        const common = { seconds: o.seconds, size: o.size, batch: o.batch, queue: 0, xdpMode: o.xdpMode };
        let res: EndpointResult;
        let peer: number;
        if (o.mode === 'txonly') {
          const before = counter!.total();
          res = await runEndpoint({ ...common, netns: pair.a.netns, ifname: pair.a.ifname, impl, direction: 'tx' });
          await sleep(50);
          peer = counter!.total() - before;
        } else {
          // The generator runs longer than the receiver, around it.
          const gen = runEndpoint({ ...common, seconds: o.seconds + 1.5, netns: pair.b.netns, ifname: pair.b.ifname, impl: 'c', direction: 'tx' });
          await sleep(400);
          res = await runEndpoint({ ...common, netns: pair.a.netns, ifname: pair.a.ifname, impl, direction: 'rx' });
          peer = (await gen).packets;
        }
        const run: Run = { impl, mpps: res.packets / res.seconds / 1e6, packets: res.packets, peerPackets: peer, seconds: res.seconds };
        runs.push(run);
        o.progress(
          `  run ${r + 1}/${o.runs} ${impl === 'ts' ? 'TypeScript' : 'raw C     '}: ${run.mpps.toFixed(3)} Mpps, ` +
            `${o.mode === 'txonly' ? `sent ${res.packets}, peer counted ${peer}` : `received ${res.packets}, generator sent ${peer}`} in ${res.seconds.toFixed(2)} s`,
        );
      }
    }
  } finally {
    counter?.close();
    pair.remove();
  }
  const ts = runs.filter((r) => r.impl === 'ts');
  const c = runs.filter((r) => r.impl === 'c');
  const mpps = summarize(ts.map((r) => r.mpps));
  const base = summarize(c.map((r) => r.mpps));
  return {
    ...resultHeader(),
    benchmark: 'backend',
    workload: o.mode,
    params: { xdpMode: o.xdpMode, seconds: o.seconds, runs: o.runs, size: o.size, batch: o.batch, queues: 1, ring: 2048, frame: 4096 },
    mpps,
    baseline: { name: 'raw C', mpps: base },
    ...pairedRatio(ts.map((t, i) => ({ mpps: t.mpps, baselineMpps: c[i]!.mpps }))),
    runs: ts.map((t, i) => ({
      run: i + 1,
      ratio: t.mpps / c[i]!.mpps,
      mpps: t.mpps,
      packets: t.packets,
      peerPackets: t.peerPackets,
      seconds: t.seconds,
      baselineMpps: c[i]!.mpps,
      baselinePackets: c[i]!.packets,
      baselinePeerPackets: c[i]!.peerPackets,
      baselineSeconds: c[i]!.seconds,
    })),
  };
}
