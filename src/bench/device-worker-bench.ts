// `xdpvm bench device --backend af-xdp --threads`: the device as the VMM runs
// it. A poll-mode driver in this thread (standing in for the guest's vCPU)
// keeps a split TX ring full of 64-byte frames; the device services it in its
// own I/O worker against an AF_XDP socket on a veth; the peer counts frames
// with an XDP program. Alternated run by run with the raw C TX loop on the
// same veth. Counted at both ends: buffers the device returned, frames the
// peer saw. The worker and the C loop are pinned to the same CPU, the driver
// to another; the headline ratio is the median of the per-run ratios.
import type { BenchRunOptions } from './bench-run-options';
import { featureMask, NetHdr, SplitAvail, SplitUsed, VirtioFeature, splitAvailEventOffset } from 'virtio-spec-types';
import { AfXdpBackend } from '../backend/af-xdp/af-xdp-backend';
import { benchCpus, pinThisThread, unpinThisThread } from '../host/cpu-affinity';
import { inNetns, VethPair } from '../host/netns';
import { WorkerQueuePairRunner } from '../io/worker-queue-pair-runner';
import { GuestMemory } from '../memory/guest-memory';
import { xsk } from '../native/xsk';
import { sys } from '../native/sys';
import type { QueueConfig } from '../virtio/device';
import { vringNeedEvent } from '../virtio/queue/event-idx';
import { resultHeader, type BenchResult } from './report';
import { pairedRatio, summarize } from './stats';
import { udpFrame } from './udp-frame';
import { XdpCounter } from './xdp-counter';
import { runEndpoint } from './xsk-endpoint';

export type DeviceWorkerBenchOptions = BenchRunOptions;

const RAM = 16 << 20;
const Q = 256;
const TX = { desc: 0x10000, avail: 0x11000, used: 0x12000 };
const RX = { desc: 0x20000, avail: 0x21000, used: 0x22000 };
const BUFS = 0x100000;
const BUF_SIZE = 2048;
const HDR = NetHdr.SIZE;
const AVAIL_IDX = SplitAvail.IDX;
const AVAIL_RING = SplitAvail.RING;
const USED_IDX = SplitUsed.IDX;

function ring(index: number, r: { desc: number; avail: number; used: number }): QueueConfig {
  return { index, size: Q, kind: 'split', enabled: true, descAddr: r.desc, driverAddr: r.avail, deviceAddr: r.used };
}

type Cpus = ReturnType<typeof benchCpus>;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** One timed run of the device in its worker; returns buffers the device returned and the elapsed time. */
async function deviceRun(netns: string, ifname: string, o: DeviceWorkerBenchOptions, cpus: Cpus): Promise<{ packets: number; seconds: number }> {
  const backend = inNetns(netns, () =>
    AfXdpBackend.open({ id: 'bench', ifname, mode: o.xdpMode, forceCopy: false, queues: 1, startQueue: 0, inhibit: false }),
  );
  const ram = sys.mapAnonymous(RAM);
  const bytes = new Uint8Array(ram);
  const u16 = new Uint16Array(ram);
  const u32 = new Uint32Array(ram);
  const runner = new WorkerQueuePairRunner({
    regions: [{ gpa: 0, address: sys.addressOf(ram), length: RAM }],
    sockets: [backend.sockets[0]!.handle()],
    cpus: [cpus?.io],
  });
  if (cpus) pinThisThread(cpus.driver, 'benchmark driver');
  try {
    // Descriptor i permanently points at TX buffer i: header (zero) + frame.
    const frame = udpFrame(o.size);
    for (let i = 0; i < Q; i++) {
      const d = (TX.desc + 16 * i) / 4;
      const buf = BUFS + i * BUF_SIZE;
      u32[d] = buf;
      u32[d + 1] = 0;
      u32[d + 2] = HDR + frame.length;
      u32[d + 3] = 0;
      bytes.set(frame, buf + HDR);
    }
    const features = featureMask(VirtioFeature.VERSION_1, VirtioFeature.EVENT_IDX);
    runner.start(
      { pair: 0, rx: ring(0, RX), tx: ring(1, TX), features, mergeable: false, offloads: { csum: false, tso: false } },
      { memory: new GuestMemory([{ gpa: 0, bytes }]), signalUsed: () => {}, markNeedsReset: () => {} },
    );
    for (let i = 0; i < 200 && !runner.isRunning(0); i++) await sleep(5);
    const kick = runner.fds[0]!.txKick;
    const availIdxAt = (TX.avail + AVAIL_IDX) / 2;
    const availRingAt = (TX.avail + AVAIL_RING) / 2;
    const usedIdxAt = (TX.used + USED_IDX) / 2;
    const availEventAt = (TX.used + splitAvailEventOffset(Q)) / 2;
    let avail = 0;
    let used = 0;
    let returned = 0;
    const start = performance.now();
    const deadline = start + o.seconds * 1000;
    for (let iter = 0; ; iter++) {
      if ((iter & 255) === 0 && performance.now() >= deadline) break;
      const u = Atomics.load(u16, usedIdxAt);
      returned += (u - used) & 0xffff;
      used = u;
      // Offer every buffer the device has given back (in-order: ids follow the ring).
      const room = Q - ((avail - used) & 0xffff);
      if (room === 0) continue;
      for (let k = 0; k < room; k++) u16[availRingAt + ((avail + k) & (Q - 1))] = (avail + k) & (Q - 1);
      const old = avail;
      avail = (avail + room) & 0xffff;
      Atomics.store(u16, availIdxAt, avail);
      // §2.7.10: kick only when the device asked to be told about this index.
      if (vringNeedEvent(Atomics.load(u16, availEventAt), avail, old)) sys.eventfdWrite(kick, 1);
    }
    const seconds = (performance.now() - start) / 1000;
    return { packets: returned, seconds };
  } finally {
    if (cpus) unpinThisThread();
    await runner.close();
    backend.close();
    sys.unmap(ram);
  }
}

export async function benchDeviceWorker(o: DeviceWorkerBenchOptions): Promise<BenchResult> {
  // The I/O worker and the C loop on the same CPU (their softirq work lands there too), the driver on another:
  // otherwise each run measures where the scheduler put the threads as much as the code.
  const cpus = benchCpus();
  const pair = new VethPair('devw');
  const runs: Array<Record<string, number>> = [];
  let counter: XdpCounter | undefined;
  try {
    counter = inNetns(pair.b.netns, () => XdpCounter.attach(xsk.ifNameToIndex(pair.b.ifname), 'native'));
    for (let r = 0; r < o.runs; r++) {
      const row: Record<string, number> = { run: r + 1 };
      for (const impl of r % 2 === 0 ? (['device', 'c'] as const) : (['c', 'device'] as const)) {
        const before = counter.total();
        let packets: number;
        let seconds: number;
        if (impl === 'device') ({ packets, seconds } = await deviceRun(pair.a.netns, pair.a.ifname, o, cpus));
        else {
          const res = await runEndpoint({ netns: pair.a.netns, ifname: pair.a.ifname, impl: 'c', direction: 'tx', xdpMode: o.xdpMode, seconds: o.seconds, size: o.size, batch: 64, queue: 0, ...(cpus ? { cpu: cpus.io } : {}) });
          packets = res.packets;
          seconds = res.seconds;
        }
        await sleep(50);
        const peer = counter.total() - before;
        const mpps = peer / seconds / 1e6;
        if (impl === 'device') Object.assign(row, { mpps, packets, peerPackets: peer, seconds });
        else Object.assign(row, { baselineMpps: mpps, baselinePackets: packets, baselinePeerPackets: peer, baselineSeconds: seconds });
        o.progress(`  run ${r + 1}/${o.runs} ${impl === 'device' ? 'device (I/O worker)' : 'raw C             '}: ${mpps.toFixed(3)} Mpps at the peer (${peer} frames; sender counted ${packets}) in ${seconds.toFixed(2)} s`);
      }
      runs.push(row);
    }
  } finally {
    counter?.close();
    pair.remove();
  }
  for (const r of runs) r.ratio = r.mpps! / r.baselineMpps!;
  const mpps = summarize(runs.map((r) => r.mpps!));
  const base = summarize(runs.map((r) => r.baselineMpps!));
  return {
    ...resultHeader(),
    benchmark: 'device-worker',
    workload: 'txonly',
    params: { xdpMode: o.xdpMode, seconds: o.seconds, runs: o.runs, size: o.size, queueSize: Q, eventIdx: true, cpus: cpus ?? 'not pinned' },
    mpps,
    baseline: { name: 'raw C', mpps: base },
    ...pairedRatio(runs.map((r) => ({ mpps: r.mpps!, baselineMpps: r.baselineMpps! }))),
    runs,
  };
}
