// Where queue pairs are serviced. The device decides what pairs exist and
// when they start and stop; a runner decides which thread services them.
// Inline (inline-queue-pair-runner.ts): in the device's thread, driven by
// kicks and polls. Worker (src/io): one thread per pair, woken by eventfds.
import type { GuestMemory } from '../../memory/guest-memory';
import type { QueueConfig } from '../device';
import type { TxOffloads } from './tx-path';

/**
 * Where a ring resumes (Virtqueue availBase / usedBase encoding): vhost-user
 * SET_VRING_BASE, or a pair restarted after a stop. Absent: a fresh ring.
 */
export interface RingResume {
  availBase?: number;
  usedBase?: number;
}

export interface QueuePairSpec {
  pair: number;
  rx: QueueConfig;
  tx: QueueConfig;
  features: bigint;
  mergeable: boolean;
  offloads: TxOffloads;
  /** VIRTIO_NET_F_MTU negotiated: the device's mtu, above which frames are dropped both ways (§5.1.4.1, §5.1.4.2). */
  mtu?: number;
  rxResume?: RingResume;
  txResume?: RingResume;
  /**
   * Drop the frames the backend queued before this start instead of
   * delivering them (vhost-user: a new front end must not receive what
   * arrived for the previous one while no ring was running).
   */
  discardPendingRx?: boolean;
}

/** Where a suspended pair's rings stopped: the resume points of its next start. */
export interface PairResume {
  rx: RingResume;
  tx: RingResume;
}

/** What a runner gets from the device for a pair: the memory, and the two ways back to the transport. */
export interface QueuePairContext {
  readonly memory: GuestMemory;
  /** Used-buffer notification for virtqueue `queueIndex`. Worker runners signal their call eventfds instead. */
  signalUsed(queueIndex: number): void;
  /** A ring of the pair broke a rule (§2.1.2). */
  markNeedsReset(): void;
}

export interface QueuePairRunner {
  /** Queue pairs the runner can service (one backend queue each). */
  readonly pairs: number;
  /** Start servicing a pair (DRIVER_OK, or VQ_PAIRS_SET enabling it). */
  start(spec: QueuePairSpec, ctx: QueuePairContext): void;
  /** Available-buffer notification that reached the device (transports without ioeventfd). */
  kick(pair: number): void;
  /**
   * Stop servicing one pair (VQ_PAIRS_SET disabling it) and resolve, once
   * nothing touches its rings, with where they stopped (undefined if it
   * never ran or its thread died).
   */
  suspend(pair: number): Promise<PairResume | undefined>;
  /** Reset: stop every pair and forget its ring state. */
  stopAll(): void;
}
