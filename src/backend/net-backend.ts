// The contract between the virtio-net device and a packet backend (AF_XDP,
// loopback). One NetBackendQueue per queue pair; each is used by exactly one
// thread, so nothing here locks. Every call is allocation-free: frames are
// offsets into `txBuffer` / `rxBuffer`, not objects. What an I/O thread needs
// besides (counters, frames still unsent, where the frames are) is here too,
// so a thread services any backend alike (queue-source.ts opens one there).
import type { GuestUmemDirect } from './guest-umem-direct';
import type { QueueCounters } from './queue-counters';

/** Result of txAcquire when the frame cannot be taken. */
export const TX_OVERSIZE = -1; // frame larger than the backend carries: dropped and counted, go on
export const TX_BUSY = -2; // no free frame or Tx slot now: stop, retry when writable

export interface NetBackendQueue {
  /** Largest frame (without the virtio-net header) the backend can carry. */
  readonly maxFrameSize: number;

  // Guest -> wire.
  /** Memory that txAcquire offsets point into. */
  readonly txBuffer: Uint8Array;
  /**
   * Reserves room for one frame of `length` bytes. Returns the offset in
   * txBuffer to copy the frame to, TX_OVERSIZE (counted as a drop) or TX_BUSY.
   */
  txAcquire(length: number): number;
  /**
   * Queues the frame at `offset` (from txAcquire) for sending. Its bytes need
   * only be in place by the next txFlush (the device batches its copies).
   */
  txCommit(offset: number, length: number): void;
  /**
   * txAcquire for `n` frames of lengths[0, n) at once, each no larger than one Tx buffer (txSegmentSize;
   * maxFrameSize without multi-buffer): their offsets go to offsets[0, k). Returns k; fewer than `n` means
   * no more are free now (as TX_BUSY, counted the same). Each is then committed or cancelled.
   */
  txAcquireBurst(lengths: Uint32Array, offsets: Float64Array, n: number): number;
  /** txCommit for offsets[i] with lengths[i] bytes, i < n, in order. */
  txCommitBurst(offsets: Float64Array, lengths: Uint32Array, n: number): void;
  /** Gives back a frame from txAcquire that will not be committed. */
  txCancel(offset: number): void;
  /** Publishes committed frames and kicks the kernel once for the batch. */
  txFlush(): void;
  /**
   * Multi-buffer backends: bytes of one Tx buffer. A frame acquired larger than this spans
   * ceil(length / txSegmentSize) buffers: bytes [k * txSegmentSize, (k + 1) * txSegmentSize) of the frame are
   * in its k-th buffer, the first at the offset txAcquire returned, each next one at txNext(previous).
   * Absent: every frame is one buffer (of up to maxFrameSize).
   */
  readonly txSegmentSize?: number;
  /** The Tx buffer after `offset` in a frame that spans several (valid from txAcquire to its commit or cancel). */
  txNext?(offset: number): number;

  // Wire -> guest.
  /** Memory that rxOffset points into. */
  readonly rxBuffer: Uint8Array;
  /** Number of received frames ready (at most `max`), without taking them. */
  rxPeek(max: number): number;
  /** Offset in rxBuffer of the i-th peeked frame. */
  rxOffset(i: number): number;
  /** Length of the i-th peeked frame. */
  rxLength(i: number): number;
  /**
   * Bytes before the i-th peeked frame's first byte, inside its buffer, that the device may overwrite until
   * rxRelease (0: none). The device puts the virtio-net header there and copies header and frame in one go.
   */
  rxHeadroom(i: number): number;
  /** Takes the first `n` peeked frames (n may be less than peeked: the rest stay queued). */
  rxRelease(n: number): void;
  /**
   * Multi-buffer backends: buffers the i-th peeked frame is made of (1: all of it at rxOffset). Its k-th
   * buffer holds rxSegmentLength(i, k) bytes at rxSegmentOffset(i, k); k = 0 is rxOffset(i). Absent: always 1.
   */
  rxSegments?(i: number): number;
  rxSegmentOffset?(i: number, k: number): number;
  rxSegmentLength?(i: number, k: number): number;

  /**
   * File descriptor to poll: readable when rxPeek may find frames, writable when TX_BUSY may clear; -1 for a
   * backend with nothing to wait for (its frames appear only when the device transmits).
   */
  readonly pollFd: number;

  /** Present when guest RAM is the backend's UMEM: frames move in place (guest-umem-path.ts); the rest is the bounce/copy path. */
  readonly guestUmem?: GuestUmemDirect;

  // For the thread that services the queue.
  readonly counters: QueueCounters;
  /** Frames flushed that the backend has not sent yet: the servicing thread calls txFlush again while > 0. */
  txUnsent(): number;
  /** Frames the queue owns in all (frameAccounting().total whenever the backend is idle). */
  readonly frameCount: number;
  /** Where the queue's frames are now (allocates: for reporting, not per packet). */
  frameAccounting(): BackendFrames;
}

/** Where a backend queue's frames are. A backend without Fill/Completion rings counts 0 there. */
export interface BackendFrames {
  /** Free, in the backend's own pool. */
  pool: number;
  /** Given to the kernel for receiving. */
  fill: number;
  /** Received, not yet taken by the device. */
  rx: number;
  /** Committed for sending, not yet sent. */
  tx: number;
  /** Sent, not yet reclaimed. */
  completion: number;
  total: number;
}

/** txAcquireBurst for a backend with nothing to gain from a burst: txAcquire frame by frame. */
export function acquireEach(be: NetBackendQueue, lengths: Uint32Array, offsets: Float64Array, n: number): number {
  for (let i = 0; i < n; i++) {
    const off = be.txAcquire(lengths[i]!);
    if (off < 0) return i;
    offsets[i] = off;
  }
  return n;
}

/** txCommitBurst frame by frame. */
export function commitEach(be: NetBackendQueue, offsets: Float64Array, lengths: Uint32Array, n: number): void {
  for (let i = 0; i < n; i++) be.txCommit(offsets[i]!, lengths[i]!);
}
