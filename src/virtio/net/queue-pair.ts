// One receive/transmit virtqueue pair and the backend queue it is serviced
// against. Self-contained (memory, two ring configs, features, backend,
// signal) so it can be built in whichever thread services it: inline for the
// test driver, or an I/O worker per pair in the VMM and the vhost-user server.
import type { NetBackendQueue } from '../../backend/net-backend';
import type { GuestMemory } from '../../memory/guest-memory';
import type { QueueConfig } from '../device';
import { createVirtqueue, type QueueError, QueueErrorCounters, queueFeaturesFrom, type Virtqueue } from '../queue';
import { CopyBatch } from '../../memory/copy-batch';
import { NetQueueCounters } from './net-counters';
import type { RingResume } from './queue-pair-runner';
import { RxPath } from './rx-path';
import { TxPath, type TxOffloads } from './tx-path';
import { GuestUmemRxPath } from './guest-umem-path';

/** Frames handled per direction per service round, so neither direction starves the other. */
export const SERVICE_BUDGET = 256;

export interface QueuePairOptions {
  memory: GuestMemory;
  rx: QueueConfig;
  tx: QueueConfig;
  features: bigint;
  mergeable: boolean;
  offloads: TxOffloads;
  /** VIRTIO_NET_F_MTU negotiated: drop frames above this MTU both ways (absent: no limit but the backend's). */
  mtu?: number;
  /** Resume points of rings that ran before (vhost-user SET_VRING_BASE); fresh rings when absent. */
  rxResume?: RingResume;
  txResume?: RingResume;
  /**
   * Receive buffers the driver must have posted again before it kicks a
   * device that ran out of them (default DEFAULT_RX_KICK_BATCH, at most a
   * quarter of the ring; 1: at the first buffer, as a device without it).
   */
  rxKickBatch?: number;
  backend: NetBackendQueue;
  /** Used-buffer notification for virtqueue `index`. */
  signal(index: number): void;
  /** A ring broke a rule (§2.1.2): the device must be reset. The codes say which ring and why (QueueError.None: not that one). */
  onBroken(rxError: QueueError, txError: QueueError): void;
}

/** Default QueuePairOptions.rxKickBatch: two bursts of a 32-frame poll-mode driver. */
export const DEFAULT_RX_KICK_BATCH = 64;

export class NetQueuePair {
  readonly counters = new NetQueueCounters();
  readonly errors = new QueueErrorCounters();
  readonly rxq: Virtqueue;
  readonly txq: Virtqueue;
  private readonly rx: RxPath | GuestUmemRxPath;
  private readonly tx: TxPath;
  private brokenReported = false;
  /** Frames moved in the last service() round (both directions). */
  lastWork = 0;

  private readonly rxKickBatch: number;

  constructor(private readonly o: QueuePairOptions) {
    const features = queueFeaturesFrom(o.features);
    const kickBatch = o.rxKickBatch ?? DEFAULT_RX_KICK_BATCH;
    this.rxKickBatch = Math.max(1, Math.min(kickBatch, o.rx.size >>> 2));
    this.rxq = createVirtqueue(o.memory, o.rx.kind, o.rx, { features, counters: this.errors, ...o.rxResume });
    this.txq = createVirtqueue(o.memory, o.tx.kind, o.tx, { features, counters: this.errors, ...o.txResume });
    // One batch of copies for both directions; each path flushes it before publishing.
    const batch = new CopyBatch();
    const direct = o.backend.guestUmem;
    this.rx = direct ? new GuestUmemRxPath(o.memory, this.rxq, direct, this.counters) : new RxPath(o.memory, this.rxq, o.backend, this.counters, o.mergeable, batch, o.mtu);
    this.tx = new TxPath(o.memory, this.txq, o.backend, this.counters, o.offloads, batch, o.mtu);
    this.checkBroken();
  }

  /** Releases what the pair registered (copy ranges); call once it will not be serviced again. */
  dispose(): void {
    this.tx.dispose();
    this.rx.dispose();
  }

  /** Waiting for the backend to take more frames (poll it for writability). */
  get txBlocked(): boolean {
    return this.tx.blocked;
  }

  /** Waiting for the guest to post receive buffers (stop polling the backend for reads). */
  get rxBlocked(): boolean {
    return this.rx.blocked;
  }

  get broken(): boolean {
    return this.rxq.broken || this.txq.broken;
  }

  /**
   * One round: guest TX to the backend, backend RX to the guest, then
   * interrupts for what was used. Returns true when work is left (call again).
   * `rearm`: ask the driver for a kick once the round finds the rings drained
   * (a kick-driven caller). A busy-polling caller passes false and arms only
   * before it sleeps (armNotifications): re-arming every round is a
   * sequentially consistent store into a line the driver keeps reading.
   */
  service(rearm = true): boolean {
    if (this.broken) return false;
    const sent = this.tx.process(SERVICE_BUDGET, this.publishTxUsed);
    const received = this.rx.process(SERVICE_BUDGET);
    this.lastWork = sent + received;
    if (this.rxq.flush()) this.notify(this.o.rx.index);
    this.checkBroken();
    if ((sent === SERVICE_BUDGET && !this.tx.blocked) || (received === SERVICE_BUDGET && !this.rx.blocked)) return true;
    if (!rearm) return false;
    // §2.7.10 / §2.8.10: with EVENT_IDX the driver notifies only when the
    // device's event index says so; keep it at the next buffer we will read,
    // or the driver stops kicking after its first batch. A transmit buffer
    // made available meanwhile is more work.
    this.rxq.enableNotifications();
    return this.txq.enableNotifications() && !this.tx.blocked;
  }

  /**
   * Before sleeping: ask the driver for kicks again (RX only when waiting for
   * buffers matters, but both are cheap) and re-check the rings. Returns true
   * when buffers arrived meanwhile (§2.7.10's race: service again, do not sleep).
   */
  armNotifications(): boolean {
    const tx = this.txq.enableNotifications();
    // Out of receive buffers: ask for a kick only once a batch of them is
    // back, not at the first. A poll-mode driver hands buffers back a burst at
    // a time; woken at the first burst, the device takes it and sleeps again,
    // a kick and two context switches per burst, on the driver's CPU when the
    // two share one.
    const blocked = this.rx.blocked;
    this.rxDeferred = blocked && this.rxKickBatch > 1;
    const rx = this.rxq.enableNotifications(blocked ? this.rxKickBatch : 1);
    return tx || (rx && blocked);
  }

  /**
   * Set by armNotifications when the receive side asked for a batch of
   * buffers: the driver need not post that many, so whoever sleeps must also
   * wake on a timeout and service what is there (rxDeferredWaitMs).
   */
  rxDeferred = false;

  /** While busy-polling: no kicks needed. */
  disarmNotifications(): void {
    this.txq.disableNotifications();
    this.rxq.disableNotifications();
  }

  /** The transmit chains used so far, published (and signalled) before the backend's flush (TxPath.process). */
  private readonly publishTxUsed = (): void => {
    if (this.txq.flush()) this.notify(this.o.tx.index);
  };

  private notify(index: number): void {
    this.counters.interrupts++;
    this.o.signal(index);
  }

  private checkBroken(): void {
    if (!this.brokenReported && this.broken) {
      this.brokenReported = true;
      this.o.onBroken(this.rxq.error, this.txq.error);
    }
  }
}
