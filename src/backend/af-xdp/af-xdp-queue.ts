// Services one XskSocket's four rings for the device (NetBackendQueue): the
// frame pool, Fill priming and refill, completion reclaim, Tx batching with
// one kick per batch, Rx peek/release with rollback, and the counters.
// Runs on exactly one thread; every call is allocation-free.
import { xsk } from '../../native/xsk';
import { TX_BUSY, TX_OVERSIZE, type NetBackendQueue } from '../net-backend';
import { FramePool } from './frame-pool';
import { QueueCounters } from './queue-counters';
import type { XskSocket } from './xsk-socket';

/** Frames kept out of the Fill ring so that Tx always has one to start with. */
const TX_RESERVE = 1;

// Transient sendto results: the kernel will send later or is busy; not errors.
const EAGAIN = 11;
const EBUSY = 16;
const ENOBUFS = 105;
/** Bound on kicks per flush: a full 2048-entry ring at 32 frames per syscall. */
const MAX_KICKS_PER_FLUSH = 65;

/**
 * The kernel's copy-mode xmit sends at most 32 frames per syscall and says
 * EAGAIN when more are left: keep kicking until the ring is drained or the
 * driver pushes back (EBUSY/ENOBUFS: the next flush or POLLOUT retries).
 */
export function kickTxRing(socket: XskSocket, counters: QueueCounters): void {
  const tx = socket.tx;
  for (let k = 0; k < MAX_KICKS_PER_FLUSH; k++) {
    counters.txKicks++;
    const r = xsk.kickTx(socket.fd);
    if (r === -EAGAIN && tx.pending() > 0) continue;
    if (r < 0 && r !== -EAGAIN && r !== -EBUSY && r !== -ENOBUFS) counters.txKickErrors++;
    return;
  }
}

/**
 * Writes the Tx descriptor `pending` entries past the producer (not yet published) and counts its bytes.
 * `addrHi` is the address's upper 32 bits (0 for an aligned UMEM's frame offsets).
 */
export function writeTxDescriptor(socket: XskSocket, counters: QueueCounters, pending: number, addrLo: number, addrHi: number, length: number): void {
  const tx = socket.tx;
  const w = tx.slot(pending) << 2; // xdp_desc: addr lo, addr hi, len, options
  const words = tx.words;
  words[w] = addrLo;
  words[w + 1] = addrHi;
  words[w + 2] = length;
  words[w + 3] = 0;
  counters.txBytes += length;
}

/** Publishes `n` written Tx descriptors; copy and skb modes only transmit inside a syscall: one kick per batch. */
export function flushTxRing(socket: XskSocket, counters: QueueCounters, n: number): void {
  const tx = socket.tx;
  if (n > 0) {
    tx.submit(n);
    counters.txPackets += n;
  }
  if (tx.needsWakeup() && (n > 0 || tx.pending() > 0)) kickTxRing(socket, counters);
}

export class AfXdpQueue implements NetBackendQueue {
  readonly counters = new QueueCounters();
  readonly maxFrameSize: number;
  readonly txBuffer: Uint8Array;
  readonly rxBuffer: Uint8Array;
  readonly pollFd: number;
  readonly frameCount: number;
  private readonly pool: FramePool;
  private readonly frameMask: number;
  private txPending = 0;
  /** Frames txAcquire may hand out before it must look at the rings again (free frames and free Tx slots). */
  private txAcquirable = 0;
  private peeked = 0;

  constructor(readonly socket: XskSocket) {
    const { frameSize, frameCount } = socket.config;
    this.maxFrameSize = frameSize;
    this.frameMask = ~(frameSize - 1) >>> 0;
    this.frameCount = frameCount;
    this.txBuffer = this.rxBuffer = new Uint8Array(socket.umem);
    this.pollFd = socket.fd;
    this.pool = new FramePool(frameCount);
    for (let i = frameCount - 1; i >= 0; i--) this.pool.push(i * frameSize);
    this.refillFill();
  }

  get queueId(): number {
    return this.socket.config.queueId;
  }

  // ---- guest -> wire ----

  txAcquire(length: number): number {
    if (length > this.maxFrameSize) {
      this.counters.txDropOversize++;
      return TX_OVERSIZE;
    }
    // Fast path: frames and Tx slots were counted once for the batch.
    if (this.txAcquirable === 0 && this.countAcquirable() === 0) {
      this.counters.txBusy++;
      return TX_BUSY;
    }
    this.txAcquirable--;
    return this.pool.pop();
  }

  /** How many frames can be acquired now: free frames and free Tx slots, completions reclaimed first. */
  private countAcquirable(): number {
    this.reclaimCompletions();
    const slots = this.socket.tx.free(this.socket.tx.size) - this.txPending;
    const frames = this.pool.count;
    this.txAcquirable = slots < frames ? slots : frames;
    return this.txAcquirable;
  }

  txCommit(offset: number, length: number): void {
    writeTxDescriptor(this.socket, this.counters, this.txPending, offset, 0, length);
    this.txPending++;
  }

  txFlush(): void {
    flushTxRing(this.socket, this.counters, this.txPending);
    this.txPending = 0;
    this.txAcquirable = 0; // recount (and reclaim) at the next acquire
  }

  txCancel(offset: number): void {
    this.pool.push(offset);
    this.txAcquirable++;
  }

  /** Frames on the Tx ring the kernel has not taken yet (the I/O loop kicks again while > 0). */
  txUnsent(): number {
    return this.socket.tx.pending();
  }

  /** Completed Tx frames go back to the pool. */
  private reclaimCompletions(): void {
    const comp = this.socket.completion;
    const n = comp.available(comp.size);
    if (n === 0) return;
    const words = comp.words;
    for (let i = 0; i < n; i++) this.pool.push(words[comp.slot(i) << 1]! & this.frameMask);
    comp.release(n);
    this.counters.txCompletions += n;
  }

  // ---- wire -> guest ----

  rxPeek(max: number): number {
    this.peeked = this.socket.rx.available(max);
    return this.peeked;
  }

  rxOffset(i: number): number {
    const rx = this.socket.rx;
    return rx.words[rx.slot(i) << 2]!;
  }

  rxLength(i: number): number {
    const rx = this.socket.rx;
    return rx.words[(rx.slot(i) << 2) + 2]!;
  }

  rxRelease(n: number): void {
    const rx = this.socket.rx;
    if (n > this.peeked) n = this.peeked;
    if (n < this.peeked) this.counters.rxDeferred++;
    const words = rx.words;
    let bytes = 0;
    for (let i = 0; i < n; i++) {
      const w = rx.slot(i) << 2;
      this.pool.push(words[w]! & this.frameMask);
      bytes += words[w + 2]!;
    }
    if (n > 0) rx.release(n);
    this.peeked = 0;
    this.counters.rxPackets += n;
    this.counters.rxBytes += bytes;
    this.refillFill();
  }

  /** Gives the kernel every free frame it has room for, keeping TX_RESERVE back for Tx. */
  private refillFill(): void {
    const fill = this.socket.fill;
    const spare = this.pool.count - TX_RESERVE;
    if (spare <= 0) return;
    let n = fill.free(spare);
    if (n > spare) n = spare;
    if (n > 0) {
      const words = fill.words;
      for (let i = 0; i < n; i++) {
        const w = fill.slot(i) << 1;
        words[w] = this.pool.pop();
        words[w + 1] = 0;
      }
      fill.submit(n);
      this.counters.fillRefills++;
      if (this.txAcquirable > this.pool.count) this.txAcquirable = this.pool.count;
    }
    // The driver went idle for want of buffers: wake it now that it has some.
    if (fill.needsWakeup()) {
      this.counters.rxKicks++;
      xsk.kickRx(this.socket.fd);
    }
  }

  // ---- accounting ----

  /** Where every frame is: must add up to frameCount whenever the kernel is idle. */
  frameAccounting(): { pool: number; fill: number; rx: number; tx: number; completion: number; total: number } {
    const s = this.socket;
    const a = {
      pool: this.pool.count,
      fill: s.fill.occupancy(),
      rx: s.rx.occupancy(),
      tx: s.tx.occupancy(),
      completion: s.completion.occupancy(),
      total: 0,
    };
    a.total = a.pool + a.fill + a.rx + a.tx + a.completion;
    return a;
  }
}
