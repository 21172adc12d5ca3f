// `xdpvm bench device`: the virtio-net device model's own speed, measured
// through the in-process test driver (src/test-driver) the way a poll-mode
// guest driver runs it: split rings, EVENT_IDX, 64-frame batches with one
// notify write per batch, buffers reposted.
//
// benchDevice (workload "loopback"): guest -> virtio-pci -> VirtioNetDevice
// -> LoopbackQueue -> VirtioNetDevice -> guest, counted at both ends (frames
// the driver sent, frames it received back). Everything runs in one thread,
// so the rate is given per CPU second of the run: Mpps per core, however
// busy the shared machine is (the wall-clock rate is in each run record
// too). Baseline, in the same run and
// the same loop: the device replaced by a minimal "direct copy" device on
// the same transport and rings: it trusts the rings, copies each transmit
// buffer straight into the next receive buffer (one copy, no descriptor
// validation, no virtio-net header handling, no backend) and completes
// both. The ratio is the share of the bare ring-and-copy rate the real
// device keeps; the driver's own work is in both.
//
// benchDeviceAfXdp (workload "txonly"): the driver sends 64-byte frames as
// fast as it can through the device into an AfXdpBackend on one end of a
// veth pair; an XDP program on the peer counts them. Alternated run by run
// with the raw C AF_XDP TX loop on the same veth (src/bench/xsk-endpoint.ts);
// ratio device / C.
//
// Every run is a child process (a core and a clean heap each, and no JIT
// feedback shared between the two implementations); a child is this file
// run with a JSON argument.
import { setTimeout as sleep } from 'node:timers/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { featureMask, NetFeature, NetGsoType, NetHdr, NetHdrFlags, SplitAvail, SplitUsed, VirtioFeature, splitAvailEventOffset, splitUsedEventOffset } from 'virtio-spec-types';
import { AfXdpBackend } from '../backend/af-xdp/af-xdp-backend';
import type { XdpMode } from '../backend/af-xdp/xdp-attachment';
import { LoopbackQueue } from '../backend/loopback/loopback-queue';
import { inNetns, VethPair } from '../host/netns';
import { xsk } from '../native/xsk';
import { attachVirtioDevice, GuestRam, ipFrame, SplitBufferRing, TEST_MAC, type VirtioNetTestDriver } from '../test-driver';
import { guestUmemTailBytes } from '../backend/af-xdp/guest-umem';
import { sys } from '../native/sys';
import type { DeviceContext, QueueConfig, VirtioDevice } from '../virtio/device';
import { VirtioNetDevice } from '../virtio/net/virtio-net-device';
import { vringNeedEvent } from '../virtio/queue/event-idx';
import { resultHeader, type BenchResult } from './report';
import { pairedRatio, summarize } from './stats';
import { udpFrame } from './udp-frame';
import { XdpCounter } from './xdp-counter';
import { runJsonChild } from './json-child';
import { runEndpoint, type EndpointParams, type EndpointResult } from './xsk-endpoint';

export interface DeviceBenchOptions {
  seconds: number;
  runs: number;
  /** Frame size without the virtio-net header (64 for the standard workload). */
  size: number;
  progress(line: string): void;
  /** Frames per notify write (default 64). */
  batch?: number;
  /**
   * Loopback only: what the driver asks of the device's TX path. none: plain frames; csum: TCP frames
   * with NEEDS_CSUM (software checksum); tso: TCP frames of `size` bytes with GSO TCPV4, MSS 1448
   * (software segmentation). Default none.
   */
  offload?: Offload;
}

export type Offload = 'none' | 'csum' | 'tso';
export const OFFLOADS: readonly Offload[] = ['none', 'csum', 'tso'];
/** TSO: MSS and the largest GSO frame the workload sends. */
const TSO_MSS = 1448;
export const MAX_TSO_FRAME = 65535;

export interface DeviceAfXdpBenchOptions extends DeviceBenchOptions {
  /** Attach mode of both the device's backend and the C loop (default native). */
  xdpMode?: XdpMode;
  /** Compare guest-umem=on with the copy path (run by run) instead of the device with raw C. */
  guestUmem?: boolean;
}

// Per-packet code reads these: the package's exports are getters, too slow there.
const HDR_SIZE = NetHdr.SIZE;
const HDR_NUM_BUFFERS = NetHdr.NUM_BUFFERS;
const QUEUE_SIZE = 256;
const BUFFER = 2048;
const CLOCK_EVERY = 64;
// The AF_XDP sizes of the backend benchmark's endpoints, so both sides match.
const XSK_RING = 2048;
const XSK_FRAME = 4096;
const XSK_FRAMES = XSK_RING * 4;

// ------------------------------------------------------------ child side

type LoopImpl = 'device' | 'direct';

interface LoopParams {
  role: 'loop';
  impl: LoopImpl;
  seconds: number;
  warmup: number;
  size: number;
  batch: number;
  offload?: Offload;
}

interface AfXdpParams {
  role: 'afxdp-tx';
  netns: string;
  ifname: string;
  xdpMode: XdpMode;
  seconds: number;
  size: number;
  batch: number;
  /** Guest RAM as the UMEM (guest-umem=on) instead of the copy path. */
  guestUmem?: boolean;
}

interface LoopResult {
  sent: number;
  received: number;
  seconds: number;
  cpuSeconds: number;
  kicks: number;
  interrupts: number;
}

interface AfXdpResult {
  /** AF_XDP TX completions during the run (frames the kernel sent; what the C loop counts too). */
  packets: number;
  /** Transmit chains the device returned to the driver. */
  driverSent: number;
  seconds: number;
  cpuSeconds: number;
  kicks: number;
  txBusy: number;
  txKicks: number;
}

/**
 * The baseline device: virtio-net's device id and two queues, but no
 * validation, no net header, no backend. A notify moves every transmit
 * buffer it can into a receive buffer with one copy and completes both,
 * keeping avail_event current and honouring used_event (§2.7.10) as the
 * real device does. It assumes a well-behaved driver with one descriptor
 * per chain: never give it a real guest.
 */
class DirectCopyDevice implements VirtioDevice {
  readonly deviceId = 1;
  readonly queueCount = 3;
  readonly queueMaxSize = QUEUE_SIZE;
  readonly deviceFeatures = featureMask(VirtioFeature.VERSION_1, VirtioFeature.EVENT_IDX);
  readonly configSize = 0;
  readonly configGeneration = 0;
  frames = 0;
  private ctx: DeviceContext | undefined;
  private bytes: Uint8Array = new Uint8Array(0);
  private u16: Uint16Array = new Uint16Array(0);
  private u32: Uint32Array = new Uint32Array(0);
  private base = 0;
  private readonly rx = new DirectRing();
  private readonly tx = new DirectRing();

  readConfig(): number {
    return 0;
  }

  writeConfig(): void {}

  setDriverFeatures(): boolean {
    return true;
  }

  activate(queues: readonly QueueConfig[], ctx: DeviceContext): void {
    const mem = ctx.memory;
    const r = mem.find(mem.regionBase(0), 1);
    if (r < 0 || !queues[0]?.enabled || !queues[1]?.enabled) return;
    this.ctx = ctx;
    this.bytes = mem.regionBytes(r);
    this.u16 = mem.regionU16(r);
    this.u32 = mem.regionU32(r);
    this.base = mem.regionBase(r);
    this.rx.setup(queues[0], this.base);
    this.tx.setup(queues[1], this.base);
  }

  reset(): void {
    this.ctx = undefined;
  }

  queueNotify(): void {
    if (!this.ctx) return;
    const { bytes, u16, u32, rx, tx } = this;
    const txAvail = Atomics.load(u16, tx.availIdxAt);
    const rxAvail = Atomics.load(u16, rx.availIdxAt);
    const mask = QUEUE_SIZE - 1;
    let n = 0;
    while (tx.lastAvail !== txAvail && rx.lastAvail !== rxAvail) {
      const th = u16[tx.availRingAt + (tx.lastAvail & mask)]!;
      const rh = u16[rx.availRingAt + (rx.lastAvail & mask)]!;
      const td = tx.descAt + th * 4; // u32 index of descriptor th
      const rd = rx.descAt + rh * 4;
      const from = u32[td]! + u32[td + 1]! * 0x1_0000_0000 - this.base;
      const to = u32[rd]! + u32[rd + 1]! * 0x1_0000_0000 - this.base;
      const txLen = u32[td + 2]!;
      const len = txLen < u32[rd + 2]! ? txLen : u32[rd + 2]!;
      bytes.copyWithin(to, from, from + len);
      bytes[to + HDR_NUM_BUFFERS] = 1; // §5.1.6.4.1: num_buffers 1
      bytes[to + HDR_NUM_BUFFERS + 1] = 0;
      let e = tx.usedRingAt + (tx.usedIdx & mask) * 2;
      u32[e] = th;
      u32[e + 1] = 0;
      e = rx.usedRingAt + (rx.usedIdx & mask) * 2;
      u32[e] = rh;
      u32[e + 1] = len;
      tx.lastAvail = (tx.lastAvail + 1) & 0xffff;
      rx.lastAvail = (rx.lastAvail + 1) & 0xffff;
      tx.usedIdx = (tx.usedIdx + 1) & 0xffff;
      rx.usedIdx = (rx.usedIdx + 1) & 0xffff;
      n++;
    }
    this.frames += n;
    if (n > 0) {
      if (tx.publish(u16)) this.ctx.signalUsed(1);
      if (rx.publish(u16)) this.ctx.signalUsed(0);
    }
    Atomics.store(u16, tx.availEventAt, tx.lastAvail);
    Atomics.store(u16, rx.availEventAt, rx.lastAvail);
  }
}

/** Ring positions of one split queue as u16 / u32 element indices into region 0. */
class DirectRing {
  descAt = 0;
  availIdxAt = 0;
  availRingAt = 0;
  usedEventAt = 0;
  usedIdxAt = 0;
  usedRingAt = 0;
  availEventAt = 0;
  lastAvail = 0;
  usedIdx = 0;
  private signalled = 0;

  setup(q: QueueConfig, base: number): void {
    this.descAt = (q.descAddr - base) / 4;
    this.availIdxAt = (q.driverAddr - base + SplitAvail.IDX) / 2;
    this.availRingAt = (q.driverAddr - base + SplitAvail.RING) / 2;
    this.usedEventAt = (q.driverAddr - base + splitUsedEventOffset(q.size)) / 2;
    this.usedIdxAt = (q.deviceAddr - base + SplitUsed.IDX) / 2;
    this.usedRingAt = (q.deviceAddr - base + SplitUsed.RING) / 4;
    this.availEventAt = (q.deviceAddr - base + splitAvailEventOffset(q.size)) / 2;
    this.lastAvail = this.usedIdx = this.signalled = 0;
  }

  /** Publishes used->idx; whether the driver asked for an interrupt (§2.7.10). */
  publish(u16: Uint16Array): boolean {
    Atomics.store(u16, this.usedIdxAt, this.usedIdx);
    const old = this.signalled;
    this.signalled = this.usedIdx;
    return vringNeedEvent(Atomics.load(u16, this.usedEventAt), this.usedIdx, old);
  }
}

/** The rings both loop implementations share: the driver brought up with split rings and EVENT_IDX, interrupts off. */
function bringUpRings(driver: VirtioNetTestDriver, offload: Offload = 'none'): void {
  const bits: number[] = [VirtioFeature.EVENT_IDX];
  if (offload !== 'none') bits.push(NetFeature.CSUM);
  if (offload === 'tso') bits.push(NetFeature.HOST_TSO4);
  const r = driver.bringUp({ features: featureMask(...bits), queueSize: QUEUE_SIZE, rx: false, interrupts: false, msix: true });
  if (!r.ok) throw new Error(`bench: bring-up failed (status 0x${r.status.toString(16)})`);
}

function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/**
 * What the driver writes per frame (§5.1.6.2): the virtio-net header, then the frame. none: a zero header
 * and a UDP frame; csum: NEEDS_CSUM over a TCP frame (partial pseudo-header sum in place); tso: that,
 * with GSO TCPV4 and MSS 1448.
 */
export function driverFrame(offload: Offload, size: number): Uint8Array {
  if (offload === 'none') {
    const pkt = new Uint8Array(NetHdr.SIZE + size);
    pkt.set(udpFrame(size), NetHdr.SIZE);
    return pkt;
  }
  const f = ipFrame({ proto: 'tcp', payload: size - 54, partialChecksum: true });
  const pkt = new Uint8Array(NetHdr.SIZE + f.frame.length);
  pkt.set(f.frame, NetHdr.SIZE);
  const h = new DataView(pkt.buffer);
  pkt[NetHdr.FLAGS] = NetHdrFlags.NEEDS_CSUM;
  h.setUint16(NetHdr.CSUM_START, f.l4, true);
  h.setUint16(NetHdr.CSUM_OFFSET, f.csumOffset, true);
  if (offload === 'tso') {
    pkt[NetHdr.GSO_TYPE] = NetGsoType.TCPV4;
    h.setUint16(NetHdr.HDR_LEN, f.hdrLen, true);
    h.setUint16(NetHdr.GSO_SIZE, TSO_MSS, true);
  }
  return pkt;
}

function runLoop(p: LoopParams): LoopResult {
  let device: VirtioDevice;
  let poll: (() => void) | undefined;
  if (p.impl === 'device') {
    // A TSO frame's segments all wait in the loopback until the guest takes them: room for a ring's worth.
    const slots = p.offload === 'tso' ? 8192 : 1024;
    const net = new VirtioNetDevice({ backends: [new LoopbackQueue({ slots })], mac: TEST_MAC, queueMaxSize: QUEUE_SIZE });
    device = net;
    poll = () => net.pollBackends();
  } else {
    device = new DirectCopyDevice();
  }
  const offload = p.offload ?? 'none';
  const pkt = driverFrame(offload, p.size);
  const txBuffer = Math.max(BUFFER, 1 << Math.ceil(Math.log2(pkt.length)));
  const rig = attachVirtioDevice(device, { ramSize: 8 * 1024 * 1024 + QUEUE_SIZE * txBuffer, ...(poll ? { pollDevice: poll } : {}) });
  const { driver, ram, irq } = rig;
  irq.logging = false;
  bringUpRings(driver, offload);
  const rx = new SplitBufferRing(driver.queues[0]!, ram, BUFFER, true);
  const tx = new SplitBufferRing(driver.queues[1]!, ram, txBuffer, false);
  const bytes = ram.bytes;
  const pktLen = pkt.length;
  const free = new Uint16Array(QUEUE_SIZE);
  let freeTop = 0;
  for (let i = QUEUE_SIZE - 1; i >= 0; i--) free[freeTop++] = i;
  for (let i = 0; i < QUEUE_SIZE; i++) rx.offer(i, BUFFER);
  rx.kick();
  let sink = 0;

  const loop = (seconds: number): LoopResult => {
    let sent = 0;
    let received = 0;
    const kicks0 = tx.queue.kicks + rx.queue.kicks;
    const irq0 = irq.totalMsi;
    const cpu0 = cpuSeconds();
    const start = performance.now();
    const deadline = start + seconds * 1000;
    for (let iter = 1; ; iter++) {
      if (iter % CLOCK_EVERY === 0 && performance.now() >= deadline) break;
      // Completed transmit buffers back to the free list.
      let n = tx.pollUsed();
      for (let k = 0; k < n; k++) free[freeTop++] = tx.usedIds[k]!;
      // One batch, one notify.
      let b = 0;
      for (; b < p.batch && freeTop > 0; b++) {
        const i = free[--freeTop]!;
        bytes.set(pkt, tx.bufferOffset(i));
        tx.offer(i, pktLen);
      }
      sent += b;
      if (b > 0) tx.kick();
      else poll?.();
      // Receive: look at each frame, give the buffer back.
      n = rx.pollUsed();
      for (let k = 0; k < n; k++) {
        const id = rx.usedIds[k]!;
        sink ^= bytes[rx.bufferOffset(id) + HDR_SIZE + (rx.usedLens[k]! & 31)]!;
        rx.offer(id, BUFFER);
      }
      received += n;
      if (n > 0) rx.kick();
    }
    const wall = (performance.now() - start) / 1000;
    return {
      sent,
      received,
      seconds: wall,
      cpuSeconds: cpuSeconds() - cpu0,
      kicks: tx.queue.kicks + rx.queue.kicks - kicks0,
      interrupts: irq.totalMsi - irq0 + (sink & 0), // `sink` keeps the frame reads from being optimised away
    };
  };
  if (p.warmup > 0) loop(p.warmup);
  const r = loop(p.seconds);
  if (driver.needsReset) throw new Error('bench: the device needs a reset');
  return r;
}

const AFXDP_RAM = 8 * 1024 * 1024;

function runAfXdpTx(p: AfXdpParams): AfXdpResult {
  // guest-umem: the test driver's RAM is a mapping with the bounce frames behind it, registered as the UMEM.
  const area = p.guestUmem ? sys.guestMemory(AFXDP_RAM + guestUmemTailBytes(1, XSK_RING)) : undefined;
  const backend = inNetns(p.netns, () =>
    AfXdpBackend.open(
      { id: 'bench', ifname: p.ifname, mode: p.xdpMode, forceCopy: false, queues: 1, startQueue: 0, inhibit: false, guestUmem: p.guestUmem ? 'on' : 'off' },
      { frameSize: XSK_FRAME, frameCount: XSK_FRAMES, ringSize: XSK_RING },
      area ? { guestRam: { buffer: area, guestLength: AFXDP_RAM, hugePages: false } } : {},
    ),
  );
  try {
    const q = backend.guestUmemQueues?.[0] ?? backend.queues[0]!;
    const net = new VirtioNetDevice({ backends: [q], mac: TEST_MAC, queueMaxSize: QUEUE_SIZE });
    const ramOption = area ? { ram: new GuestRam(AFXDP_RAM, 0x10_0000, area) } : { ramSize: AFXDP_RAM };
    const { driver, ram, irq } = attachVirtioDevice(net, { ...ramOption, pollDevice: () => net.pollBackends() });
    irq.logging = false;
    bringUpRings(driver);
    const tx = new SplitBufferRing(driver.queues[1]!, ram, BUFFER, false);
    const bytes = ram.bytes;
    const pkt = new Uint8Array(NetHdr.SIZE + p.size);
    pkt.set(udpFrame(p.size), NetHdr.SIZE);
    const free = new Uint16Array(QUEUE_SIZE);
    let freeTop = 0;
    for (let i = QUEUE_SIZE - 1; i >= 0; i--) free[freeTop++] = i;
    const c = q.counters;
    const completions0 = c.txCompletions;
    const busy0 = c.txBusy;
    const txKicks0 = c.txKicks;
    let driverSent = 0;
    const cpu0 = cpuSeconds();
    const start = performance.now();
    const deadline = start + p.seconds * 1000;
    for (let iter = 1; ; iter++) {
      if (iter % CLOCK_EVERY === 0 && performance.now() >= deadline) break;
      const n = tx.pollUsed();
      for (let k = 0; k < n; k++) free[freeTop++] = tx.usedIds[k]!;
      driverSent += n;
      let b = 0;
      for (; b < p.batch && freeTop > 0; b++) {
        const i = free[--freeTop]!;
        bytes.set(pkt, tx.bufferOffset(i));
        tx.offer(i, pkt.length);
      }
      // With nothing to add the device is waiting for the backend: let it look (an I/O thread would poll the XSK fd).
      if (b === 0 || !tx.kick()) net.pollBackends();
    }
    const seconds = (performance.now() - start) / 1000;
    const cpu = cpuSeconds() - cpu0;
    return {
      packets: c.txCompletions - completions0,
      driverSent,
      seconds,
      cpuSeconds: cpu,
      kicks: tx.queue.kicks,
      txBusy: c.txBusy - busy0,
      txKicks: c.txKicks - txKicks0,
    };
  } finally {
    backend.close();
    if (area) sys.unmap(area);
  }
}

// ------------------------------------------------------------ parent side

const SELF = path.join(__dirname, 'device-bench.js');

function checkOptions(o: DeviceBenchOptions): number {
  if (!(o.seconds > 0) || !Number.isInteger(o.runs) || o.runs < 1) throw new Error('seconds must be > 0 and runs a positive integer');
  const offload = o.offload ?? 'none';
  if (!OFFLOADS.includes(offload)) throw new Error(`offload: '${String(offload)}' is not ${OFFLOADS.join(', ')}`);
  const max = offload === 'tso' ? MAX_TSO_FRAME : BUFFER - NetHdr.SIZE;
  if (!Number.isInteger(o.size) || o.size < 60 || o.size > max) throw new Error(`size: ${o.size} is not 60..${max}`);
  if (offload === 'csum' && o.size > 1514) throw new Error(`size: ${o.size}: checksum frames are at most 1514 bytes (use tso for larger)`);
  const batch = o.batch ?? 64;
  if (!Number.isInteger(batch) || batch < 1 || batch > QUEUE_SIZE) throw new Error(`batch: ${batch} is not 1..${QUEUE_SIZE}`);
  return batch;
}

function result(benchmark: string, workload: string, params: Record<string, unknown>, mpps: number[], baseName: string, base: number[], runs: Array<Record<string, unknown>>): BenchResult {
  const m = summarize(mpps);
  const b = summarize(base);
  return {
    ...resultHeader(),
    benchmark,
    workload,
    params,
    mpps: m,
    baseline: { name: baseName, mpps: b },
    ratio: m.median / b.median,
    runs,
  };
}

/** Frames per CPU second, in millions: the loop is one thread, so this is Mpps per core whatever else the machine runs. */
function perCore(frames: number, r: LoopResult): number {
  return frames / r.cpuSeconds / 1e6;
}

/** Loopback through the device vs the direct-copy device, alternating; Mpps = frames received back per CPU second. */
export async function benchDevice(o: DeviceBenchOptions): Promise<BenchResult> {
  const batch = checkOptions(o);
  const warmup = Math.min(0.5, o.seconds * 0.25);
  const runs: Array<Record<string, unknown>> = [];
  const dev: number[] = [];
  const base: number[] = [];
  for (let r = 0; r < o.runs; r++) {
    const got: Partial<Record<LoopImpl, LoopResult>> = {};
    for (const impl of r % 2 === 0 ? (['device', 'direct'] as const) : (['direct', 'device'] as const)) {
      const params: LoopParams = { role: 'loop', impl, seconds: o.seconds, warmup, size: o.size, batch, offload: o.offload ?? 'none' };
      const res = await runJsonChild<LoopResult>(SELF, params, `loop ${impl}`);
      got[impl] = res;
      o.progress(
        `  run ${r + 1}/${o.runs} ${impl === 'device' ? 'virtio-net  ' : 'direct copy '}: ${perCore(res.received, res).toFixed(3)} Mpps/core received, ` +
          `${perCore(res.sent, res).toFixed(3)} sent (sent ${res.sent}, received ${res.received} in ${res.seconds.toFixed(2)} s wall, ` +
          `${res.cpuSeconds.toFixed(2)} s cpu; ${res.kicks} kicks, ${res.interrupts} interrupts)`,
      );
    }
    const d = got.device!;
    const c = got.direct!;
    dev.push(perCore(d.received, d));
    base.push(perCore(c.received, c));
    runs.push({
      run: r + 1,
      mpps: perCore(d.received, d),
      sentMpps: perCore(d.sent, d),
      wallMpps: d.received / d.seconds / 1e6,
      packets: d.sent,
      peerPackets: d.received,
      seconds: d.seconds,
      cpuSeconds: d.cpuSeconds,
      kicks: d.kicks,
      interrupts: d.interrupts,
      baselineMpps: perCore(c.received, c),
      baselineSentMpps: perCore(c.sent, c),
      baselineWallMpps: c.received / c.seconds / 1e6,
      baselinePackets: c.sent,
      baselinePeerPackets: c.received,
      baselineSeconds: c.seconds,
      baselineCpuSeconds: c.cpuSeconds,
    });
  }
  return result(
    'device',
    o.offload && o.offload !== 'none' ? `loopback-${o.offload}` : 'loopback',
    {
      seconds: o.seconds, runs: o.runs, size: o.size, batch, warmupSeconds: warmup, ring: 'split', eventIdx: true, queueSize: QUEUE_SIZE,
      backend: 'loopback', offload: o.offload ?? 'none',
      counted: 'packets = frames the driver sent, peerPackets = frames it received back; mpps = received per CPU second of the (single-threaded) run: Mpps per core; wallMpps per wall second',
      baseline: 'direct copy: same driver, transport and rings; a trusting device copying each tx buffer into the next rx buffer',
    },
    dev,
    'direct copy',
    base,
    runs,
  );
}

/** txonly on a veth pair: driver -> device -> AfXdpBackend, alternating with the raw C TX loop; the peer counts in XDP. */
export async function benchDeviceAfXdp(o: DeviceAfXdpBenchOptions): Promise<BenchResult> {
  if (o.guestUmem) return benchGuestUmem(o);
  const batch = checkOptions(o);
  const xdpMode = o.xdpMode ?? 'native';
  const pair = new VethPair('devbench');
  const runs: Array<Record<string, unknown>> = [];
  const dev: number[] = [];
  const base: number[] = [];
  let counter: XdpCounter | undefined;
  try {
    counter = inNetns(pair.b.netns, () => XdpCounter.attach(xsk.ifNameToIndex(pair.b.ifname), 'native'));
    for (let r = 0; r < o.runs; r++) {
      let d: AfXdpResult | undefined;
      let dPeer = 0;
      let c: EndpointResult | undefined;
      let cPeer = 0;
      for (const impl of r % 2 === 0 ? (['device', 'c'] as const) : (['c', 'device'] as const)) {
        const before = counter.total();
        if (impl === 'device') {
          const params: AfXdpParams = { role: 'afxdp-tx', netns: pair.a.netns, ifname: pair.a.ifname, xdpMode, seconds: o.seconds, size: o.size, batch };
          d = await runJsonChild<AfXdpResult>(SELF, params, 'device txonly');
        } else {
          const params: EndpointParams = {
            netns: pair.a.netns, ifname: pair.a.ifname, impl: 'c', direction: 'tx', xdpMode, seconds: o.seconds, size: o.size, batch, queue: 0,
          };
          c = await runEndpoint(params, 'raw C tx');
        }
        await sleep(50);
        const peer = counter.total() - before;
        if (impl === 'device') dPeer = peer;
        else cPeer = peer;
        const [pk, secs] = impl === 'device' ? [d!.packets, d!.seconds] : [c!.packets, c!.seconds];
        o.progress(
          `  run ${r + 1}/${o.runs} ${impl === 'device' ? 'virtio-net + AF_XDP' : 'raw C AF_XDP      '}: ${(pk / secs / 1e6).toFixed(3)} Mpps, ` +
            `sent ${pk}, peer counted ${peer} in ${secs.toFixed(2)} s` +
            (impl === 'device' ? ` (driver chains completed ${d!.driverSent}, cpu ${d!.cpuSeconds.toFixed(2)} s, backend busy ${d!.txBusy})` : ''),
        );
      }
      dev.push(d!.packets / d!.seconds / 1e6);
      base.push(c!.packets / c!.seconds / 1e6);
      runs.push({
        run: r + 1,
        mpps: d!.packets / d!.seconds / 1e6,
        packets: d!.packets,
        peerPackets: dPeer,
        seconds: d!.seconds,
        driverSent: d!.driverSent,
        cpuSeconds: d!.cpuSeconds,
        txBusy: d!.txBusy,
        baselineMpps: c!.packets / c!.seconds / 1e6,
        baselinePackets: c!.packets,
        baselinePeerPackets: cPeer,
        baselineSeconds: c!.seconds,
      });
    }
  } finally {
    counter?.close();
    pair.remove();
  }
  return result(
    'device-af-xdp',
    'txonly',
    {
      xdpMode, seconds: o.seconds, runs: o.runs, size: o.size, batch, ring: 'split', eventIdx: true, queueSize: QUEUE_SIZE,
      xskRing: XSK_RING, xskFrame: XSK_FRAME, counted: 'packets = AF_XDP TX completions, peerPackets = frames the peer XDP counter saw',
    },
    dev,
    'raw C',
    base,
    runs,
  );
}

/** One device txonly child: Mpps, frames and CPU ns per frame (robust when the machine is shared). */
interface TxRun {
  mpps: number;
  packets: number;
  peer: number;
  cpuNsPerFrame: number;
  r: AfXdpResult;
}

/**
 * guest-umem=on against the copy path, alternated run by run on the same veth (which goes first swaps each run),
 * ratio per run (guest-umem / copy); CPU ns per frame of both beside it.
 */
async function benchGuestUmem(o: DeviceAfXdpBenchOptions): Promise<BenchResult> {
  const batch = checkOptions(o);
  if (o.size > BUFFER - HDR_SIZE) throw new Error(`size: at most ${BUFFER - HDR_SIZE} with guest-umem (one 2 KiB buffer per frame)`);
  const xdpMode = o.xdpMode ?? 'native';
  const pair = new VethPair('gumbench');
  const runs: Array<Record<string, unknown>> = [];
  const zc: number[] = [];
  const copy: number[] = [];
  let counter: XdpCounter | undefined;
  try {
    counter = inNetns(pair.b.netns, () => XdpCounter.attach(xsk.ifNameToIndex(pair.b.ifname), 'native'));
    for (let i = 0; i < o.runs; i++) {
      const got: Partial<Record<'copy' | 'guest-umem', TxRun>> = {};
      for (const impl of i % 2 === 0 ? (['copy', 'guest-umem'] as const) : (['guest-umem', 'copy'] as const)) {
        const before = counter.total();
        const params: AfXdpParams = {
          role: 'afxdp-tx', netns: pair.a.netns, ifname: pair.a.ifname, xdpMode, seconds: o.seconds, size: o.size, batch, guestUmem: impl === 'guest-umem',
        };
        const r = await runJsonChild<AfXdpResult>(SELF, params, `device txonly ${impl}`);
        await sleep(50);
        const peer = counter.total() - before;
        const run: TxRun = { mpps: r.packets / r.seconds / 1e6, packets: r.packets, peer, cpuNsPerFrame: (r.cpuSeconds * 1e9) / Math.max(1, r.packets), r };
        got[impl] = run;
        o.progress(
          `  run ${i + 1}/${o.runs} ${impl.padEnd(10)}: ${run.mpps.toFixed(3)} Mpps, ${run.cpuNsPerFrame.toFixed(0)} CPU ns/frame, ` +
            `sent ${r.packets}, peer counted ${peer} in ${r.seconds.toFixed(2)} s (driver chains completed ${r.driverSent}, backend busy ${r.txBusy})`,
        );
      }
      const z = got['guest-umem']!;
      const c = got.copy!;
      zc.push(z.mpps);
      copy.push(c.mpps);
      runs.push({
        run: i + 1, mpps: z.mpps, packets: z.packets, peerPackets: z.peer, seconds: z.r.seconds, cpuSeconds: z.r.cpuSeconds, cpuNsPerFrame: z.cpuNsPerFrame,
        driverSent: z.r.driverSent, txBusy: z.r.txBusy,
        baselineMpps: c.mpps, baselinePackets: c.packets, baselinePeerPackets: c.peer, baselineSeconds: c.r.seconds, baselineCpuSeconds: c.r.cpuSeconds,
        baselineCpuNsPerFrame: c.cpuNsPerFrame, cpuRatio: c.cpuNsPerFrame / z.cpuNsPerFrame,
      });
    }
  } finally {
    counter?.close();
    pair.remove();
  }
  const cpu = summarize(runs.map((r) => r.cpuRatio as number));
  const res = result(
    'device-af-xdp-guest-umem',
    'txonly',
    {
      xdpMode, seconds: o.seconds, runs: o.runs, size: o.size, batch, ring: 'split', eventIdx: true, queueSize: QUEUE_SIZE, xskRing: XSK_RING,
      compared: 'guest-umem=on (guest RAM as the UMEM, frames sent in place) against guest-umem=off (copied into 4 KiB UMEM frames)',
      counted: 'packets = AF_XDP TX completions, peerPackets = frames the peer XDP counter saw',
    },
    zc,
    'copy',
    copy,
    runs,
  );
  // Each run measures both back to back: the median of the per-run ratios is the headline, and CPU per frame beside it.
  const paired = runs.map((r) => ({ mpps: r.mpps as number, baselineMpps: r.baselineMpps as number }));
  o.progress(`CPU per frame, copy / guest-umem (> 1: guest-umem is cheaper): median ${cpu.median.toFixed(3)} (min ${cpu.min.toFixed(3)}, max ${cpu.max.toFixed(3)})`);
  return { ...res, subject: 'guest-umem', ...pairedRatio(paired), cpuRatio: cpu };
}

if (require.main === module) {
  const p = JSON.parse(process.argv[2] ?? '{}') as LoopParams | AfXdpParams;
  const r = p.role === 'loop' ? runLoop(p) : runAfXdpTx(p);
  process.stdout.write(`${JSON.stringify(r)}\n`);
}
