// The virtio-net device (§5.1): features, configuration space, the control
// queue, and which queue pairs run. Transport-neutral (PCI, vhost-user, the
// test driver) and backend-neutral: a QueuePairRunner services the pairs,
// inline in this thread (InlineQueuePairRunner: a kick services its pair at
// once, the front end calls pollBackends() when a backend may have frames)
// or in I/O workers (src/io). Both are driven the same way: pair 0 runs from
// DRIVER_OK, the others only while VQ_PAIRS_SET enables them (§5.1.6.5.5).
import { hasFeature, NetFeature, NetMtu, NetStatus, VIRTIO_ID_NET } from 'virtio-spec-types';
import type { NetBackendQueue } from '../../backend/net-backend';
import type { DeviceContext, QueueConfig, VirtioDevice } from '../device';
import { createVirtqueue, queueFeaturesFrom } from '../queue';
import { ControlQueue } from './control-queue';
import { InlineQueuePairRunner } from './inline-queue-pair-runner';
import { NetConfigSpace } from './net-config-space';
import { netFeatureDependencyError, offeredNetFeatures, pairFeatures } from './net-features';
import type { NetQueuePair } from './queue-pair';
import type { PairResume, QueuePairContext, QueuePairRunner, QueuePairSpec } from './queue-pair-runner';

export interface VirtioNetOptions {
  /** Backend queues serviced inline, in the device's thread (one per pair)... */
  backends?: readonly NetBackendQueue[];
  /** ...or a runner that services the pairs elsewhere (I/O worker threads). */
  runner?: QueuePairRunner;
  mac: Uint8Array;
  /** Largest Queue Size offered (power of two), every queue unless overridden below. */
  queueMaxSize?: number;
  /** Largest Queue Size of every receive / transmit queue (QEMU's rx_queue_size / tx_queue_size). */
  rxQueueSize?: number;
  txQueueSize?: number;
  /** The `mtu` field offered with VIRTIO_NET_F_MTU (§5.1.4; 68..65535, default 1500), enforced both ways once negotiated. */
  mtu?: number;
  /** Offer software checksum and TSO (default on). */
  offloads?: boolean;
  /** Offer packed rings (default on). */
  packed?: boolean;
}

export class VirtioNetDevice implements VirtioDevice {
  readonly deviceId = VIRTIO_ID_NET;
  readonly queueCount: number;
  readonly queueMaxSize: number;
  readonly queueMaxSizes: readonly number[] | undefined;
  readonly deviceFeatures: bigint;
  readonly configSize: number;
  readonly maxPairs: number;
  readonly config: NetConfigSpace;
  private driverFeatures = 0n;
  private ctx: DeviceContext | undefined;
  private readonly runner: QueuePairRunner;
  private readonly inline: InlineQueuePairRunner | undefined;
  /** Per pair, from DRIVER_OK: what to start it with (undefined: its queues are not enabled). */
  private specs: (QueuePairSpec | undefined)[] = [];
  /** Per pair: started on the runner and not suspended since. */
  private running: boolean[] = [];
  /** Per pair: a suspend in flight, resolving with where its rings stopped. */
  private suspending: (Promise<PairResume | undefined> | undefined)[] = [];
  /** Bumped by activate and reset: work left over from before is dropped. */
  private epoch = 0;
  private ctrl: ControlQueue | undefined;
  private ctrlIndex = -1;
  private activePairs = 1;
  private needsReset = false;
  private pairCtx: QueuePairContext | undefined;
  readonly mtu: number;

  constructor(private readonly o: VirtioNetOptions) {
    if ((o.backends === undefined) === (o.runner === undefined)) throw new Error('virtio-net needs either backends or a runner');
    this.inline = o.backends ? new InlineQueuePairRunner(o.backends) : undefined;
    this.runner = this.inline ?? o.runner!;
    this.maxPairs = this.runner.pairs;
    if (this.maxPairs < 1) throw new Error('virtio-net needs at least one queue pair');
    this.queueCount = 2 * this.maxPairs + 1;
    this.queueMaxSize = o.queueMaxSize ?? 256;
    // §5.1.2: receiveq k is queue 2k, transmitq k is 2k + 1; the control queue (last) keeps queueMaxSize.
    const rx = o.rxQueueSize ?? this.queueMaxSize;
    const tx = o.txQueueSize ?? this.queueMaxSize;
    const ctrl = this.queueCount - 1;
    this.queueMaxSizes =
      rx === this.queueMaxSize && tx === this.queueMaxSize
        ? undefined
        : Array.from({ length: this.queueCount }, (_, i) => (i === ctrl ? this.queueMaxSize : i % 2 === 0 ? rx : tx));
    const mtu = o.mtu ?? NetMtu.ETHERNET;
    // §5.1.4.1: the device MUST set mtu between 68 and 65535.
    if (!Number.isInteger(mtu) || mtu < NetMtu.MIN || mtu > NetMtu.MAX) throw new RangeError(`virtio-net: mtu ${mtu} is not in ${NetMtu.MIN}..${NetMtu.MAX}`);
    this.mtu = mtu;
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
    this.stopPairs();
    const epoch = ++this.epoch;
    for (let p = 0; p < pairCount; p++) {
      const rx = queues[2 * p];
      const tx = queues[2 * p + 1];
      if (!rx?.enabled || !tx?.enabled) continue;
      this.specs[p] = {
        pair: p,
        rx,
        tx,
        features: f,
        ...pairFeatures(f),
        ...(has(NetFeature.MTU) ? { mtu: this.mtu } : {}),
      };
    }
    this.pairCtx = {
      memory: ctx.memory,
      signalUsed: (i) => {
        if (epoch === this.epoch) ctx.signalUsed(i);
      },
      markNeedsReset: () => {
        if (epoch === this.epoch) this.markNeedsReset();
      },
    };
    const cq = this.ctrlIndex >= 0 ? queues[this.ctrlIndex] : undefined;
    this.ctrl = undefined;
    if (cq?.enabled) {
      const vq = createVirtqueue(ctx.memory, cq.kind, cq, { features: queueFeaturesFrom(f) });
      this.ctrl = new ControlQueue(ctx.memory, vq, {
        maxPairs: this.maxPairs,
        mq,
        rxMode: has(NetFeature.CTRL_RX),
        macAddr: has(NetFeature.CTRL_MAC_ADDR),
        setActivePairs: (n) => this.setActivePairs(n),
        setMac: (mac) => this.config.setMac(mac),
        ackAnnounce: () => this.config.setStatus(this.config.status & ~NetStatus.ANNOUNCE),
      });
    }
    // §5.1.6.5.5: only the first pair is used until VQ_PAIRS_SET.
    this.setActivePairs(1);
  }

  /** §5.1.6.5.5: pairs below `n` run, the others stop (their rings resume where they were if enabled again). */
  private setActivePairs(n: number): void {
    this.activePairs = n;
    for (let p = 0; p < this.maxPairs; p++) {
      const want = p < n && this.specs[p] !== undefined;
      if (want && !this.running[p]) this.startPair(p);
      else if (!want && this.running[p]) {
        this.running[p] = false;
        this.suspending[p] = this.runner.suspend(p);
      }
    }
  }

  private startPair(p: number): void {
    const spec = this.specs[p]!;
    const ctx = this.pairCtx!;
    this.running[p] = true;
    const pending = this.suspending[p];
    if (!pending) {
      this.runner.start(spec, ctx);
      return;
    }
    // Enabled again before its suspend finished: start where its rings stopped, once they have.
    const epoch = this.epoch;
    void pending.then((at) => {
      if (epoch !== this.epoch || !this.running[p] || this.suspending[p] !== pending) return;
      this.suspending[p] = undefined;
      this.runner.start(at ? { ...spec, rxResume: at.rx, txResume: at.tx } : spec, ctx);
    });
  }

  queueNotify(index: number): void {
    if (!this.ctx) return;
    if (index === this.ctrlIndex) {
      if (this.ctrl?.process()) this.ctx.signalUsed(index);
      if (this.ctrl?.vq.broken) this.markNeedsReset();
      return;
    }
    const p = index >> 1;
    if (this.running[p]) this.runner.kick(p);
  }

  /** Inline runner: services every running pair whose backend may have work (frames to receive, room to send). */
  pollBackends(): void {
    this.inline?.poll();
  }

  /** Inline runner: the running pair objects, by index (for counters); empty with a worker runner. */
  queuePairs(): readonly (NetQueuePair | undefined)[] {
    return this.inline?.queuePairs() ?? [];
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
    this.ctx = undefined;
    this.stopPairs();
    this.epoch++;
    this.ctrl = undefined;
    this.ctrlIndex = -1;
    this.activePairs = 1;
    this.driverFeatures = 0n;
    this.needsReset = false;
    // Back to the initial state (device.ts): the driver's MAC_ADDR_SET and a pending ANNOUNCE go; the link state is the host's.
    if (this.config.status & NetStatus.ANNOUNCE) this.config.setStatus(this.config.status & ~NetStatus.ANNOUNCE);
    this.config.setMac(this.o.mac);
  }

  private stopPairs(): void {
    this.runner.stopAll();
    this.specs = [];
    this.running = [];
    this.suspending = [];
    this.pairCtx = undefined;
  }

  private markNeedsReset(): void {
    if (this.needsReset) return;
    this.needsReset = true;
    this.ctx?.markNeedsReset();
  }
}

