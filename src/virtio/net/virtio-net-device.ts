// The virtio-net device (§5.1): features, configuration space, the control
// queue and one NetQueuePair per backend queue. Transport-neutral (PCI,
// vhost-user, the test driver) and backend-neutral (NetBackendQueue).
// Servicing is inline here: a kick services its pair at once and the front
// end calls pollBackends() when a backend may have frames.
import { hasFeature, NetFeature, NetStatus, VIRTIO_ID_NET } from 'virtio-spec-types';
import type { NetBackendQueue } from '../../backend/net-backend';
import type { DeviceContext, QueueConfig, VirtioDevice } from '../device';
import { createVirtqueue, queueFeaturesFrom } from '../queue';
import { ControlQueue } from './control-queue';
import { NetConfigSpace } from './net-config-space';
import { netFeatureDependencyError, offeredNetFeatures, pairFeatures } from './net-features';
import { NetQueuePair } from './queue-pair';
import type { QueuePairRunner } from './queue-pair-runner';

export interface VirtioNetOptions {
  /** Backend queues serviced inline, in the device's thread (one per pair)... */
  backends?: readonly NetBackendQueue[];
  /** ...or a runner that services the pairs elsewhere (I/O worker threads). */
  runner?: QueuePairRunner;
  mac: Uint8Array;
  /** Largest Queue Size offered (power of two). */
  queueMaxSize?: number;
  mtu?: number;
  /** Offer software checksum and TSO (default on). */
  offloads?: boolean;
  /** Offer packed rings (default on). */
  packed?: boolean;
}

/** Rounds of service per kick before yielding (the next kick or poll continues). */
const MAX_ROUNDS_PER_KICK = 64;

export class VirtioNetDevice implements VirtioDevice {
  readonly deviceId = VIRTIO_ID_NET;
  readonly queueCount: number;
  readonly queueMaxSize: number;
  readonly deviceFeatures: bigint;
  readonly configSize: number;
  readonly maxPairs: number;
  readonly config: NetConfigSpace;
  private driverFeatures = 0n;
  private ctx: DeviceContext | undefined;
  private pairs: NetQueuePair[] = [];
  private ctrl: ControlQueue | undefined;
  private ctrlIndex = -1;
  private activePairs = 1;
  private needsReset = false;

  constructor(private readonly o: VirtioNetOptions) {
    if ((o.backends === undefined) === (o.runner === undefined)) throw new Error('virtio-net needs either backends or a runner');
    this.maxPairs = o.backends?.length ?? o.runner!.pairs;
    if (this.maxPairs < 1) throw new Error('virtio-net needs at least one queue pair');
    this.queueCount = 2 * this.maxPairs + 1;
    this.queueMaxSize = o.queueMaxSize ?? 256;
    const mtu = o.mtu ?? 1500;
    this.config = new NetConfigSpace(o.mac, this.maxPairs, mtu, 10000);
    this.configSize = this.config.bytes.length;
    this.deviceFeatures = offeredNetFeatures({ pairs: this.maxPairs, offloads: o.offloads ?? true, packed: o.packed ?? true, control: true });
  }

  get configGeneration(): number {
    return this.config.generation;
  }

  get features(): bigint {
    return this.driverFeatures;
  }

  readConfig(offset: number, size: 1 | 2 | 4): number {
    return this.config.read(offset, size);
  }

  writeConfig(): void {
    // §5.1.4: the configuration is read-only for a VERSION_1 driver (MAC changes go through the control queue).
  }

  setDriverFeatures(features: bigint): boolean {
    if (netFeatureDependencyError(features, true) !== undefined) return false;
    this.driverFeatures = features;
    return true;
  }

  activate(queues: readonly QueueConfig[], ctx: DeviceContext): void {
    this.ctx = ctx;
    this.needsReset = false;
    const f = ctx.features;
    const has = (bit: number): boolean => hasFeature(f, bit);
    const mq = has(NetFeature.MQ);
    // §5.1.2: with MQ the control queue follows all pairs; without, it is queue 2.
    this.ctrlIndex = has(NetFeature.CTRL_VQ) ? (mq ? 2 * this.maxPairs : 2) : -1;
    const pairCount = mq ? this.maxPairs : 1;
    this.disposePairs();
    for (let p = 0; p < pairCount; p++) {
      const rx = queues[2 * p];
      const tx = queues[2 * p + 1];
      if (!rx?.enabled || !tx?.enabled) continue;
      const spec = {
        pair: p,
        rx,
        tx,
        features: f,
        ...pairFeatures(f),
      };
      if (this.o.runner) {
        this.o.runner.start(spec, {
          memory: ctx.memory,
          features: ctx.features,
          signalUsed: (i) => ctx.signalUsed(i),
          signalConfig: () => ctx.signalConfig(),
          markNeedsReset: () => this.markNeedsReset(),
        });
        continue;
      }
      this.pairs[p] = new NetQueuePair({
        ...spec,
        memory: ctx.memory,
        backend: this.o.backends![p]!,
        signal: (i) => this.ctx?.signalUsed(i),
        onBroken: () => this.markNeedsReset(),
      });
    }
    const cq = this.ctrlIndex >= 0 ? queues[this.ctrlIndex] : undefined;
    this.ctrl = undefined;
    if (cq?.enabled) {
      const vq = createVirtqueue(ctx.memory, cq.kind, cq, { features: queueFeaturesFrom(f) });
      this.ctrl = new ControlQueue(ctx.memory, vq, {
        maxPairs: this.maxPairs,
        mq,
        rxMode: has(NetFeature.CTRL_RX),
        macAddr: has(NetFeature.CTRL_MAC_ADDR),
        setActivePairs: (n) => (this.activePairs = n),
        setMac: (mac) => this.config.setMac(mac),
        ackAnnounce: () => this.config.setStatus(this.config.status & ~NetStatus.ANNOUNCE),
      });
    }
    // §5.1.6.5.5: only the first pair is used until VQ_PAIRS_SET.
    this.activePairs = 1;
  }

  queueNotify(index: number): void {
    if (!this.ctx) return;
    if (index === this.ctrlIndex) {
      if (this.ctrl?.process()) this.ctx.signalUsed(index);
      if (this.ctrl?.vq.broken) this.markNeedsReset();
      return;
    }
    if (this.o.runner) this.o.runner.kick(index >> 1);
    else this.servicePair(index >> 1);
  }

  /** Services every active pair whose backend may have work (frames to receive, room to send). */
  pollBackends(): void {
    for (let p = 0; p < this.activePairs; p++) this.servicePair(p);
  }

  /** The pair objects (for counters and for front ends that service them from their own threads). */
  queuePairs(): readonly (NetQueuePair | undefined)[] {
    return this.pairs;
  }

  get activeQueuePairs(): number {
    return this.activePairs;
  }

  /** Link state, as the host sees it: a change raises a configuration interrupt (§5.1.4). */
  setLinkUp(up: boolean): void {
    const s = this.config.status;
    const next = up ? s | NetStatus.LINK_UP : s & ~NetStatus.LINK_UP;
    if (next === s) return;
    this.config.setStatus(next);
    this.ctx?.signalConfig();
  }

  /** Asks the guest to announce itself (e.g. after migration), if it negotiated GUEST_ANNOUNCE. */
  announce(): void {
    if (!hasFeature(this.driverFeatures, NetFeature.GUEST_ANNOUNCE)) return;
    this.config.setStatus(this.config.status | NetStatus.ANNOUNCE);
    this.ctx?.signalConfig();
  }

  reset(): void {
    this.o.runner?.stopAll();
    this.ctx = undefined;
    this.disposePairs();
    this.ctrl = undefined;
    this.ctrlIndex = -1;
    this.activePairs = 1;
    this.driverFeatures = 0n;
    this.needsReset = false;
    // Back to the initial state (device.ts): the driver's MAC_ADDR_SET and a pending ANNOUNCE go; the link state is the host's.
    if (this.config.status & NetStatus.ANNOUNCE) this.config.setStatus(this.config.status & ~NetStatus.ANNOUNCE);
    this.config.setMac(this.o.mac);
  }

  private disposePairs(): void {
    for (const pair of this.pairs) pair?.dispose();
    this.pairs = [];
  }

  private servicePair(p: number): void {
    const pair = this.pairs[p];
    if (!pair || p >= this.activePairs) return;
    for (let round = 0; round < MAX_ROUNDS_PER_KICK && pair.service(); round++);
  }

  private markNeedsReset(): void {
    if (this.needsReset) return;
    this.needsReset = true;
    this.ctx?.markNeedsReset();
  }
}

