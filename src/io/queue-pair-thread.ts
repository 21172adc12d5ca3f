// What crosses from the main thread to a queue pair's I/O worker: plain,
// structured-cloneable data (fds, addresses, ring configs) and one small
// SharedArrayBuffer for control and live counters. No per-packet messages.
import type { XskSocketHandle } from '../backend/af-xdp/xsk-socket';
import type { QueuePairSpec } from '../virtio/net/queue-pair-runner';

export interface SharedRegion {
  gpa: number;
  address: bigint;
  length: number;
}

export interface QueuePairEventFds {
  /** Guest kicks (ioeventfd, vhost-user kick fd, or written by the transport). */
  rxKick: number;
  txKick: number;
  /** Used-buffer notifications (irqfd, vhost-user call fd). */
  rxCall: number;
  txCall: number;
}

export interface QueuePairWorkerData {
  regions: SharedRegion[];
  spec: QueuePairSpec;
  socket: XskSocketHandle;
  fds: QueuePairEventFds;
  /** Written by the main thread to wake the worker for a stop. */
  wakeFd: number;
  control: SharedArrayBuffer;
  /** Busy-poll rounds without work before arming notifications and sleeping. */
  spinRounds: number;
}

/** Int32 slots of the control block. */
export const enum Control {
  Stop = 0,
  Running = 1,
  Broken = 2,
  Words = 4,
}

/** Float64 slots (after the Int32 words) with live counters, updated every few rounds. */
export const COUNTER_NAMES = ['txFrames', 'txBytes', 'rxFrames', 'rxBytes', 'rxNoBuffers', 'txBackpressure', 'interrupts', 'sleeps'] as const;
export const CONTROL_BYTES = Control.Words * 4 + COUNTER_NAMES.length * 8;
