// What crosses from the main thread to an I/O thread (io-thread.ts): plain,
// structured-cloneable data (fds, addresses, ring configs, how to open each
// pair's backend queue), one small SharedArrayBuffer for the thread and one
// per queue pair for control and live counters (the table in
// pair-counters.ts). No per-packet messages.
//
// An I/O thread serves one or more queue pairs (as QEMU's iothread-vq-mapping
// gives one iothread several queues) for its runner's whole life. A pair is
// serviced in *sessions*: a ring configuration, the guest memory it lives in
// and its kick/call eventfds, from a start (DRIVER_OK, VQ_PAIRS_SET, a
// vhost-user front end's rings) to a stop. The pair's backend queue outlives
// its sessions, so a socket's frames stay accounted for by one queue however
// often the rings restart.
import path from 'node:path';
import type { MessagePort } from 'node:worker_threads';
import type { BackendQueueSource } from '../backend/queue-source';
import type { XskSocketHandle } from '../backend/af-xdp/xsk-socket';
import type { QueuePairSpec } from '../virtio/net/queue-pair-runner';
import { COUNTER_SLOTS } from './pair-counters';

/** The I/O thread's module (io-thread.ts). */
export const IO_THREAD_MODULE = path.join(__dirname, 'io-thread.js');

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

/** One start() of a pair: what its thread services until it is asked to stop that generation. */
export interface QueuePairSession {
  regions: SharedRegion[];
  spec: QueuePairSpec;
  fds: QueuePairEventFds;
  /** Increases with every session of the pair, from 1. */
  generation: number;
}

/** Posted after a reset the thread released (PairControl.ResetRebind): the pair's backend queue services this socket now. */
export interface BackendRebind {
  pair: number;
  rebind: XskSocketHandle;
}

/** What the main thread posts on an I/O thread's port. */
export type IoThreadMessage = QueuePairSession | BackendRebind;

/** A queue pair an I/O thread serves. */
export interface IoThreadPair {
  pair: number;
  /** How the thread opens the pair's backend queue (once, at the pair's first session). */
  backend: BackendQueueSource;
  /** The pair's control block (PairControl words, then the counter table). */
  control: SharedArrayBuffer;
}

export interface IoThreadData {
  /** The thread's index (pairs map to threads: WorkerRunnerOptions.threadOf). */
  thread: number;
  pairs: IoThreadPair[];
  /** The guest memory its sessions will likely use, to map while it waits for the first. */
  regions: SharedRegion[];
  /** Written by the main thread to wake the thread (a new session, a stop, an exit). */
  wakeFd: number;
  /** The thread's control block (ThreadControl). */
  control: SharedArrayBuffer;
  /** Sessions (QueuePairSession) and socket rebinds after a reset (BackendRebind) arrive here. */
  port: MessagePort;
  /** Busy-poll rounds without work before arming notifications and sleeping, at most. */
  spinRounds: number;
  /**
   * Longest busy-poll without work (µs) before sleeping: QEMU's poll-max-ns. The bound actually used adapts
   * between 0 and this (AdaptivePoll, with pollGrow and pollShrink as QEMU's iothread has them).
   */
  pollUs: number;
  pollGrow: number;
  pollShrink: number;
  /**
   * After a round that moved fewer than COALESCE_FRAMES frames, and after
   * a transmit kick woke the thread, wait this long (µs) before the next
   * round (0: never). Frames then arrive in batches: a thread sharing its
   * CPU with the vCPU it serves leaves it the CPU between batches instead of
   * taking it for every frame or burst.
   */
  coalesceUs: number;
  /** Host CPU the thread pins itself to (none: the scheduler's choice). */
  cpu?: number;
  /** Scheduling niceness of the thread (none: inherited). */
  nice?: number;
}

/** Validates a pair → thread mapping: every pair on a thread in 0..threads-1, every thread serving a pair. */
export function threadMapping(pairs: number, threadOf: readonly number[] | undefined): number[] {
  const map = threadOf ? [...threadOf] : Array.from({ length: pairs }, (_, p) => p);
  if (map.length !== pairs) throw new RangeError(`the I/O thread mapping names ${map.length} queue pair(s), the device has ${pairs}`);
  const threads = map.length === 0 ? 0 : Math.max(...map) + 1;
  for (const t of map) if (!Number.isInteger(t) || t < 0 || t >= pairs) throw new RangeError(`I/O thread '${t}' is not between 0 and ${pairs - 1}`);
  for (let t = 0; t < threads; t++) if (!map.includes(t)) throw new RangeError(`I/O thread ${t} serves no queue pair (number the threads from 0 without gaps)`);
  return map;
}

/** Int32 slots of an I/O thread's control block. */
export const enum ThreadControl {
  /** Bumped by the main thread when it posts a session or asks the thread to exit. */
  Doorbell = 0,
  /** Leave once no pair's session runs. */
  Exit = 1,
  /** The thread's Linux thread id. */
  Tid = 2,
  Words = 4,
}
export const THREAD_CONTROL_BYTES = ThreadControl.Words * 4;

/** Int32 slots of a queue pair's control block. */
export const enum PairControl {
  /** Highest session generation the main thread asked to stop. */
  Stop = 0,
  /** 1 while a session is serviced. */
  Running = 1,
  /** Generation of the last session whose ring broke a rule (0: none). */
  Broken = 2,
  /** Highest generation whose session has ended: its final ring positions are below. */
  Done = 3,
  /** Final ring positions of session Done, in Virtqueue availBase/usedBase encoding. */
  RxNextAvail = 4,
  RxNextUsed = 5,
  TxNextAvail = 6,
  TxNextUsed = 7,
  /** Where the backend queue's frames are (NetBackendQueue.frameAccounting), published with the counters. */
  FramesPool = 8,
  FramesFill = 9,
  FramesRx = 10,
  FramesTx = 11,
  FramesCompletion = 12,
  FrameCount = 13,
  /** Why the session of generation Broken stopped servicing its rings (BrokenCause in pair-counters.ts). */
  BrokenCause = 14,
  /** QueueError code of the receive / transmit ring that broke (0: that ring did not). */
  RxError = 15,
  TxError = 16,
  /** The Linux thread id of the I/O thread serving the pair (for /proc/self/task/TID: its CPU time, its placement). */
  Tid = 17,
  /**
   * Device reset of a pair whose backend holds guest buffers (guest-umem): the main thread bumps ResetRequest
   * (after stopping the session); the thread ends the session, makes its queue forget what the kernel holds,
   * sets ResetRebind (1: the socket must be closed and a fresh one bound, then sent as a BackendRebind) and
   * stores ResetRequest's value in ResetDone.
   */
  ResetRequest = 18,
  ResetDone = 19,
  ResetRebind = 20,
  /** Int32 words before the counters (even, so the Float64 slots that follow are 8-byte aligned; 21 is spare). */
  Words = 22,
}

/** Byte offset of the counter table's Float64 slots (pair-counters.ts) in the control block. */
export const COUNTERS_OFFSET = PairControl.Words * 4;
/**
 * Float64 after the counters: when the pair's thread first handed one of its frames to the backend
 * (CLOCK_MONOTONIC ms, 0: not yet), for the boot timeline's firstTx. Written once.
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
