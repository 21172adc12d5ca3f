// The one table of what a queue pair's I/O worker counts and publishes to
// the main thread (as Firecracker keeps per-device metrics): the names, the
// groups, and the Float64 slot of each in the shared control block. The
// worker writes by slot, the main thread reads by name; both derive the
// slots from this table, so no side counts positions by hand.
//
// Groups:
// - device: NetQueueCounters of the pair (what the guest caused);
// - worker: the I/O loop's own events (service rounds, sleeps, wake-ups, kicks read);
// - backend: the AF_XDP queue's QueueCounters (syscalls, refills, completions);
// - queueErrors: QueueErrorCounters, one slot per QueueError code (why a ring stopped);
// - guestUmem: GuestUmemCounters of a queue whose UMEM is guest RAM (0 for any other).
import type { QueueCounters } from '../backend/queue-counters';
import type { GuestUmemCounters } from '../backend/af-xdp/guest-umem-queue';
import type { NetQueueCounters } from '../virtio/net/net-counters';
import { QUEUE_ERROR_COUNT, queueErrorName } from '../virtio/queue/queue-error';

type NumberKeys<T> = { [K in keyof T]: T[K] extends number ? K : never }[keyof T];

/** Every NetQueueCounters field (test/io-worker-counter-table.test.ts checks none is missing). */
export const DEVICE_COUNTERS = [
  'txFrames', 'txBytes', 'txDropRunt', 'txDropOversize', 'txDropUnsegmentable', 'txDropBadCsum', 'txBackpressure', 'txSegmented',
  'rxFrames', 'rxBytes', 'rxNoBuffers', 'rxDropTooSmall', 'interrupts', 'txDropOverMtu', 'rxDropOverMtu',
] as const satisfies readonly NumberKeys<NetQueueCounters>[];

/** The worker's own counters, cumulative over its sessions. */
export const WORKER_COUNTERS = [
  /** Service rounds (one TX pass and one RX pass each). */
  'rounds',
  /** epoll_wait calls: the worker armed notifications and went to sleep. */
  'sleeps',
  /** Sleeps that ended on an event (a kick, a frame, a stop) rather than the timeout. */
  'wakeups',
  /** Microseconds spent asleep in epoll_wait (a sleep that ran to its timeout is a lost wake-up or an idle queue). */
  'sleptUs',
  /** Microseconds spent in coalescing waits (IoThreadData.coalesceUs): asleep too, with kicks off. */
  'coalescedUs',
  /** Guest kicks consumed (eventfd reads that returned a count). */
  'kicksRead',
  /** Frames dropped because they were queued before a start that asked for discardPendingRx. */
  'rxDiscarded',
] as const;

/** Every QueueCounters field of the AF_XDP queue. */
export const BACKEND_COUNTERS = [
  'txPackets', 'txBytes', 'txDropOversize', 'txBusy', 'txKicks', 'txKickErrors', 'txCompletions',
  'rxPackets', 'rxBytes', 'rxKicks', 'rxDeferred', 'fillRefills', 'txMultiBuffer', 'rxMultiBuffer',
] as const satisfies readonly NumberKeys<QueueCounters>[];

/** Every GuestUmemCounters field: what only guest RAM as the UMEM counts (published for 'guest-umem' backends). */
export const GUEST_UMEM_COUNTERS = [
  'txDirect', 'txBounced', 'txDirectCompleted', 'rxDirect', 'rxBounced', 'rxBounceTooSmall', 'refusedOutside',
  'unknownCompletions', 'unknownRx', 'rxBadOffset', 'resets',
] as const satisfies readonly NumberKeys<GuestUmemCounters>[];

export type DeviceCounter = (typeof DEVICE_COUNTERS)[number];
export type WorkerCounter = (typeof WORKER_COUNTERS)[number];
export type BackendCounter = (typeof BACKEND_COUNTERS)[number];
export type GuestUmemCounter = (typeof GUEST_UMEM_COUNTERS)[number];

/** First Float64 slot of each group. */
export const COUNTER_BASE = {
  device: 0,
  worker: DEVICE_COUNTERS.length,
  backend: DEVICE_COUNTERS.length + WORKER_COUNTERS.length,
  queueErrors: DEVICE_COUNTERS.length + WORKER_COUNTERS.length + BACKEND_COUNTERS.length,
  guestUmem: DEVICE_COUNTERS.length + WORKER_COUNTERS.length + BACKEND_COUNTERS.length + QUEUE_ERROR_COUNT,
} as const;

/** Float64 slots of the whole table. */
export const COUNTER_SLOTS = COUNTER_BASE.guestUmem + GUEST_UMEM_COUNTERS.length;

/** Slot of a worker counter (the worker increments these in place). */
export function workerSlot(name: WorkerCounter): number {
  return COUNTER_BASE.worker + WORKER_COUNTERS.indexOf(name);
}

/** Why a session stopped servicing its rings (Control.BrokenCause). */
export const BrokenCause = {
  None: 0,
  /** A ring broke a rule: Control.RxError / TxError hold the QueueError code. */
  Ring: 1,
  /** The session's memory regions could not be mapped or were refused. */
  Memory: 2,
  /** The I/O loop failed (an fd epoll refused). */
  Loop: 3,
} as const;
export type BrokenCause = (typeof BrokenCause)[keyof typeof BrokenCause];

const CAUSE_NAMES = ['none', 'ring', 'memory', 'loop'] as const;

/** The counters of one pair, by group and name (reporting: allocates). */
export interface PairCounters {
  device: Record<DeviceCounter, number>;
  worker: Record<WorkerCounter, number>;
  backend: Record<BackendCounter, number>;
  /** Guest RAM as the UMEM (a 'guest-umem' backend only): frames in place / bounced, refusals, resets. */
  guestUmem?: Record<GuestUmemCounter, number>;
  /** Ring-rule violations by QueueError name (only the non-zero ones). */
  queueErrors: Record<string, number>;
  /** Why the last session stopped servicing its rings, if it did. */
  broken: { cause: (typeof CAUSE_NAMES)[number]; rx: string | null; tx: string | null };
}

function group<N extends string>(live: Float64Array, base: number, names: readonly N[]): Record<N, number> {
  const out = {} as Record<N, number>;
  names.forEach((n, i) => (out[n] = live[base + i]!));
  return out;
}

/** Reads a published table (`live`: the Float64 slots; cause and error codes from the control words). */
export function readPairCounters(live: Float64Array, cause: number, rxError: number, txError: number, guestUmem = false): PairCounters {
  const queueErrors: Record<string, number> = {};
  for (let code = 1; code < QUEUE_ERROR_COUNT; code++) {
    const v = live[COUNTER_BASE.queueErrors + code]!;
    if (v !== 0) queueErrors[queueErrorName(code)] = v;
  }
  return {
    device: group(live, COUNTER_BASE.device, DEVICE_COUNTERS),
    worker: group(live, COUNTER_BASE.worker, WORKER_COUNTERS),
    backend: group(live, COUNTER_BASE.backend, BACKEND_COUNTERS),
    ...(guestUmem ? { guestUmem: group(live, COUNTER_BASE.guestUmem, GUEST_UMEM_COUNTERS) } : {}),
    queueErrors,
    broken: {
      cause: CAUSE_NAMES[cause] ?? 'none',
      rx: rxError !== 0 ? queueErrorName(rxError) : null,
      tx: txError !== 0 ? queueErrorName(txError) : null,
    },
  };
}
