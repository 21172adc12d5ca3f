// Where queue pairs are serviced. The device decides what pairs exist and
// when they start and stop; a runner decides which thread services them.
// Inline (default): in the device's thread, driven by kicks and polls.
// Worker (src/io): one thread per pair, woken by eventfds.
import type { DeviceContext, QueueConfig } from '../device';
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
  rxResume?: RingResume;
  txResume?: RingResume;
  /**
   * Drop the frames the backend queued before this start instead of
   * delivering them (vhost-user: a new front end must not receive what
   * arrived for the previous one while no ring was running).
   */
  discardPendingRx?: boolean;
}

export interface QueuePairRunner {
  /** Queue pairs the runner can service (one backend queue each). */
  readonly pairs: number;
  /** DRIVER_OK: start servicing a pair. */
  start(spec: QueuePairSpec, ctx: DeviceContext): void;
  /** Available-buffer notification that reached the device (transports without ioeventfd). */
  kick(pair: number): void;
  /** Reset: stop every pair and forget its ring state. */
  stopAll(): void;
}
