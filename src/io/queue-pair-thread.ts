// What crosses from the main thread to a queue pair's I/O worker: plain,
// structured-cloneable data (fds, addresses, ring configs) and one small
// SharedArrayBuffer for control and live counters (the table in
// pair-counters.ts). No per-packet messages.
//
// A worker services one *session* at a time: a ring configuration, the
// guest memory it lives in and its kick/call eventfds. A one-shot worker
// (the VMM) services the session it was started with and exits when it is
// stopped. A persistent worker (the vhost-user server) stays with its AF_XDP
// socket for the runner's lifetime and services one session after another,
// so the socket's frames stay accounted for by one AfXdpQueue.
import path from 'node:path';
import type { MessagePort } from 'node:worker_threads';
import type { XskSocketHandle } from '../backend/af-xdp/xsk-socket';
import type { QueuePairSpec } from '../virtio/net/queue-pair-runner';
import { COUNTER_SLOTS } from './pair-counters';

/** The I/O worker's module (queue-pair-worker.ts). */
export const QUEUE_PAIR_WORKER = path.join(__dirname, 'queue-pair-worker.js');

export interface SharedRegion {
  gpa: number;
  /** Page-aligned start of the mapping that holds the region (for xsk.alias in the worker). */
  address: bigint;
  /** Bytes of the region. */
  length: number;
  /** Bytes of the mapping before the region's first byte (a mapping offset that was not page-aligned). Default 0. */
  offset?: number;
}

export interface QueuePairEventFds {
  /** Guest kicks (ioeventfd, vhost-user kick fd, or written by the transport). */
  rxKick: number;
  txKick: number;
  /** Used-buffer notifications (irqfd, vhost-user call fd). */
  rxCall: number;
  txCall: number;
}

/** One start(): what the worker services until it is asked to stop that generation. */
export interface QueuePairSession {
  regions: SharedRegion[];
  spec: QueuePairSpec;
  fds: QueuePairEventFds;
  /** Increases with every session of a worker, from 1. */
  generation: number;
}

export interface QueuePairWorkerData {
  pair: number;
  /** The session to service at once; without it (a prestarted worker) the first one arrives on `port`. */
  session?: QueuePairSession;
  /** A prestarted worker: the guest memory its sessions will likely use, to map while it waits. */
  regions?: SharedRegion[];
  socket: XskSocketHandle;
  /** Written by the main thread to wake the worker for a stop. */
  wakeFd: number;
  control: SharedArrayBuffer;
  /** Busy-poll rounds without work before arming notifications and sleeping. */
  spinRounds: number;
  /** And at most this long busy-polling without work (µs), whichever comes first: a round's cost depends on the host. */
  pollUs: number;
  /**
   * After a round that moved fewer than COALESCE_FRAMES frames, wait this
   * long (µs) before the next (0: never). Frames then arrive in batches: a
   * worker sharing its CPU with the vCPU it serves leaves it the CPU between
   * batches instead of taking it for every frame.
   */
  coalesceUs: number;
  /** Host CPU the worker pins itself to (none: the scheduler's choice). */
  cpu?: number;
  /** Scheduling niceness of the worker thread (none: inherited). */
  nice?: number;
  /** Persistent worker: after a session, wait for the next one (QueuePairSession messages on this port). */
  port?: MessagePort;
}

/** Int32 slots of the control block. */
export const enum Control {
  /** Highest session generation the main thread asked to stop. */
  Stop = 0,
  /** 1 while a session is serviced. */
  Running = 1,
  /** Generation of the last session whose ring broke a rule (0: none). */
  Broken = 2,
  /** Bumped by the main thread when it posts a session or asks a persistent worker to exit. */
  Doorbell = 3,
  /** Highest generation whose session has ended: its final ring positions are below. */
  Done = 4,
  /** Persistent worker: leave once idle. */
  Exit = 5,
  /** Final ring positions of session Done, in Virtqueue availBase/usedBase encoding. */
  RxNextAvail = 6,
  RxNextUsed = 7,
  TxNextAvail = 8,
  TxNextUsed = 9,
  /** Where the socket's UMEM frames are (AfXdpQueue.frameAccounting), published with the counters. */
  FramesPool = 10,
  FramesFill = 11,
  FramesRx = 12,
  FramesTx = 13,
  FramesCompletion = 14,
  FrameCount = 15,
  /** Why the session of generation Broken stopped servicing its rings (BrokenCause in pair-counters.ts). */
  BrokenCause = 16,
  /** QueueError code of the receive / transmit ring that broke (0: that ring did not). */
  RxError = 17,
  TxError = 18,
  /** The worker thread's Linux thread id (for /proc/self/task/TID: its CPU time, its placement). */
  Tid = 19,
  /** Int32 words before the counters (even, so the Float64 slots that follow are 8-byte aligned). */
  Words = 20,
}

/** Byte offset of the counter table's Float64 slots (pair-counters.ts) in the control block. */
export const COUNTERS_OFFSET = Control.Words * 4;
/**
 * Float64 after the counters: when the worker first handed a frame to the kernel (CLOCK_MONOTONIC ms, 0: not
 * yet), for the boot timeline's firstTx. Written once per worker.
 */
export const FIRST_TX_OFFSET = COUNTERS_OFFSET + COUNTER_SLOTS * 8;
export const CONTROL_BYTES = FIRST_TX_OFFSET + 8;

/** Where a ring stopped (vhost-user GET_VRING_BASE; the next start resumes there). */
export interface RingPosition {
  nextAvail: number;
  nextUsed: number;
}

export interface PairPositions {
  rx: RingPosition;
  tx: RingPosition;
}

export interface FrameAccounting {
  pool: number;
  fill: number;
  rx: number;
  tx: number;
  completion: number;
  total: number;
  frameCount: number;
}
