// Services one XskSocket's four rings for the device (NetBackendQueue): the
// frame pool, Fill priming and refill, completion reclaim, Tx batching with
// one kick per batch, Rx peek/release with rollback, and the counters.
// With XDP_USE_SG (multi-buffer, af_xdp.rst) a frame larger than one UMEM
// frame is a chain of descriptors, XDP_PKT_CONTD set on all but the last,
// both ways. Runs on exactly one thread; every call is allocation-free.
import { xsk } from '../../native/xsk';
import { TX_BUSY, TX_OVERSIZE, type BackendFrames, type NetBackendQueue } from '../net-backend';
import { FramePool } from './frame-pool';
import { QueueCounters } from '../queue-counters';
import type { XskSocket } from './xsk-socket';

/** Frames kept out of the Fill ring so that Tx always has one to start with (a whole chain with multi-buffer). */
const TX_RESERVE = 1;
/**
 * Longest Tx chain: copy mode takes at most CONFIG_MAX_SKB_FRAGS + 1 descriptors per frame and drops longer
 * chains as invalid (frames never completed); 17 is that config's minimum, so 18 works on every kernel.
 */
export const MAX_TX_FRAGS = 18;
const CONTD = xsk.constants.XDP_PKT_CONTD;

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
  putTxDescriptor(tx.words, tx.slot(pending), addrLo, addrHi, length);
  counters.txBytes += length;
}

/** The xdp_desc at ring index `slot` of `words`: addr lo, addr hi, len, options (none). */
function putTxDescriptor(words: Uint32Array, slot: number, addrLo: number, addrHi: number, length: number): void {
  const w = slot << 2;
  words[w] = addrLo;
  words[w + 1] = addrHi;
  words[w + 2] = length;
  words[w + 3] = 0;
}

/** Publishes `n` written Tx descriptors; copy and skb modes only transmit inside a syscall: one kick per batch. */
export function flushTxRing(socket: XskSocket, counters: QueueCounters, n: number, packets = n): void {
  const tx = socket.tx;
  if (n > 0) {
    tx.submit(n);
    counters.txPackets += packets;
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
  /** Bytes of one Tx buffer; a frame acquired larger spans several (multi-buffer). */
  readonly txSegmentSize: number;
  private txPending = 0;
  /** Descriptors in txPending beyond the first of their frame (txPackets counts frames). */
  private txPendingExtra = 0;
  /** Frames txAcquire may hand out before it must look at the rings again (free frames and free Tx slots). */
  private txAcquirable = 0;
  /** Frames acquired and neither committed nor cancelled yet: each will take a Tx slot. */
  private txHeld = 0;
  private peeked = 0;
  /** Bound with XDP_USE_SG: Rx frames may come in several descriptors. */
  private readonly sg: boolean;
  private readonly frameShift: number;
  private readonly txReserve: number;
  /** Per UMEM frame (by index): the next frame of its Tx chain, from acquire to commit/cancel; -1 otherwise. */
  private readonly chainNext: Int32Array;
  /** Multi-buffer Rx: first descriptor (from the ring's consumer) of each peeked frame, and one past the last frame's. */
  private readonly rxStart: Uint32Array;
  /** Multi-buffer Rx: each peeked frame's length over all its descriptors. */
  private readonly rxLen: Uint32Array;

  constructor(readonly socket: XskSocket) {
    const { frameSize, frameCount } = socket.config;
    this.sg = socket.sg;
    // Zero-copy Tx chains are limited by the NIC (NETDEV_A_DEV_XDP_ZC_MAX_SEGS, not queried here): Tx stays one
    // buffer per frame there; receiving chains is safe in every mode.
    const txChains = socket.sg && !socket.zeroCopy;
    this.txSegmentSize = frameSize;
    this.maxFrameSize = txChains ? MAX_TX_FRAGS * frameSize : frameSize;
    this.txReserve = txChains ? MAX_TX_FRAGS : TX_RESERVE;
    this.frameShift = 31 - Math.clz32(frameSize);
    this.chainNext = new Int32Array(txChains ? frameCount : 0).fill(-1);
    this.rxStart = new Uint32Array(this.sg ? socket.rx.size + 1 : 0);
    this.rxLen = new Uint32Array(this.sg ? socket.rx.size : 0);
    // As int32 (the same bits): a uint32 mask above 2^31 would be a double in every use.
    this.frameMask = ~(frameSize - 1);
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
    if (length > this.txSegmentSize) return this.txAcquireChain(length);
    // Fast path: frames and Tx slots were counted once for the batch.
    if (this.txAcquirable === 0 && this.countAcquirable() === 0) {
      this.counters.txBusy++;
      return TX_BUSY;
    }
    this.txAcquirable--;
    this.txHeld++;
    return this.pool.pop();
  }

  /** How many frames can be acquired now: free frames and free Tx slots, completions reclaimed first. */
  private countAcquirable(): number {
    this.reclaimCompletions();
    // Frames out of the pool and not yet committed (TSO segments, a chain) will need their slots too.
    const slots = this.socket.tx.free(this.socket.tx.size) - this.txPending - this.txHeld;
    const frames = this.pool.count;
    this.txAcquirable = slots < frames ? slots : frames;
    return this.txAcquirable;
  }

  /** A frame over several UMEM frames: all of them and as many Tx slots are taken at once, so a chain is never cut. */
  private txAcquireChain(length: number): number {
    if (length > this.maxFrameSize) {
      this.counters.txDropOversize++;
      return TX_OVERSIZE;
    }
    const shift = this.frameShift;
    const n = (length + this.txSegmentSize - 1) >>> shift;
    if (this.txAcquirable < n && this.countAcquirable() < n) {
      this.counters.txBusy++;
      return TX_BUSY;
    }
    this.txAcquirable -= n;
    this.txHeld += n;
    const first = this.pool.pop();
    let prev = first;
    for (let k = 1; k < n; k++) {
      const f = this.pool.pop();
      this.chainNext[prev >>> shift] = f;
      prev = f;
    }
    return first;
  }

  /** Frames and Tx slots counted once for the burst; every length is within one UMEM frame (the caller's promise). */
  txAcquireBurst(lengths: Uint32Array, offsets: Float64Array, n: number): number {
    let k = n;
    if (this.txAcquirable < k && this.countAcquirable() < k) {
      k = this.txAcquirable;
      this.counters.txBusy++;
    }
    const seg = this.txSegmentSize;
    let i = 0;
    while (i < k && lengths[i]! <= seg) i++;
    this.pool.popInto(offsets, i);
    this.txAcquirable -= i;
    this.txHeld += i;
    return i;
  }

  /** One descriptor each (frames within one UMEM frame). */
  txCommitBurst(offsets: Float64Array, lengths: Uint32Array, n: number): void {
    // writeTxDescriptor's work, the slot taken from one base and the bytes counted once.
    const tx = this.socket.tx;
    const { words, mask } = tx;
    const first = tx.slot(this.txPending);
    let bytes = 0;
    for (let i = 0; i < n; i++) {
      const length = lengths[i]!;
      putTxDescriptor(words, (first + i) & mask, offsets[i]!, 0, length);
      bytes += length;
    }
    this.counters.txBytes += bytes;
    this.txPending += n;
    this.txHeld -= n;
  }

  txNext(offset: number): number {
    return this.chainNext[offset >>> this.frameShift]!;
  }

  txCommit(offset: number, length: number): void {
    if (length > this.txSegmentSize) {
      this.txCommitChain(offset, length);
      return;
    }
    writeTxDescriptor(this.socket, this.counters, this.txPending, offset, 0, length);
    this.txPending++;
    this.txHeld--;
  }

  /** One descriptor per UMEM frame of the chain, XDP_PKT_CONTD on all but the last (af_xdp.rst "Multi-Buffer Support"). */
  private txCommitChain(offset: number, length: number): void {
    const tx = this.socket.tx;
    const words = tx.words;
    const { chainNext, frameShift: shift, txSegmentSize: seg } = this;
    let frame = offset;
    let left = length;
    let descs = 0;
    for (;;) {
      const next = chainNext[frame >>> shift]!;
      chainNext[frame >>> shift] = -1;
      const w = tx.slot(this.txPending + descs) << 2;
      descs++;
      words[w] = frame;
      words[w + 1] = 0;
      // The chain ends where the frames acquired for it do, whatever length is committed: never a dangling CONTD.
      if (left <= seg || next < 0) {
        words[w + 2] = left <= seg ? left : seg;
        words[w + 3] = 0;
        // Frames acquired beyond the committed length go back (txCancel walks from there).
        if (next >= 0) this.txCancel(next);
        break;
      }
      words[w + 2] = seg;
      words[w + 3] = CONTD;
      left -= seg;
      frame = next;
    }
    this.txPending += descs;
    this.txHeld -= descs;
    this.txPendingExtra += descs - 1;
    this.counters.txBytes += length;
    this.counters.txMultiBuffer++;
  }

  txFlush(): void {
    flushTxRing(this.socket, this.counters, this.txPending, this.txPending - this.txPendingExtra);
    this.txPending = 0;
    this.txPendingExtra = 0;
    this.txAcquirable = 0; // recount (and reclaim) at the next acquire
  }

  txCancel(offset: number): void {
    if (this.chainNext.length === 0) {
      this.pool.push(offset);
      this.txAcquirable++;
      this.txHeld--;
      return;
    }
    // Every frame of a chain goes back (a single frame's link is -1).
    const shift = this.frameShift;
    for (let f = offset; f >= 0; ) {
      const next = this.chainNext[f >>> shift]!;
      this.chainNext[f >>> shift] = -1;
      this.pool.push(f);
      this.txAcquirable++;
      this.txHeld--;
      f = next;
    }
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
    this.pool.pushFromRing(comp.words, comp.slot(0), comp.mask, n, this.frameMask, 2);
    comp.release(n);
    this.counters.txCompletions += n;
  }

  // ---- wire -> guest ----

  rxPeek(max: number): number {
    this.peeked = this.sg ? this.peekChains(max) : this.socket.rx.available(max);
    return this.peeked;
  }

  /**
   * Multi-buffer: up to `max` whole frames, each a run of descriptors ending in one without XDP_PKT_CONTD.
   * The kernel posts whole frames, but a peek may still see part of one (a cached producer index, a batch
   * limit): that part stays on the ring for the next peek, nothing of it is taken.
   */
  private peekChains(max: number): number {
    const rx = this.socket.rx;
    const words = rx.words;
    const { rxStart, rxLen } = this;
    let avail = rx.available(rx.size);
    let refreshed = false;
    let d = 0;
    let p = 0;
    while (p < max && d < avail) {
      const first = d;
      let len = 0;
      let opt = 0;
      do {
        const w = rx.slot(d) << 2;
        len += words[w + 2]!;
        opt = words[w + 3]!;
        d++;
      } while ((opt & CONTD) !== 0 && d < avail);
      if ((opt & CONTD) !== 0) {
        d = first;
        // The rest may be there already: look at the producer once more, then leave the part for later.
        if (refreshed) break;
        refreshed = true;
        avail = rx.refresh(rx.size);
        continue;
      }
      rxStart[p] = first;
      rxLen[p] = len;
      p++;
    }
    rxStart[p] = d;
    return p;
  }

  rxOffset(i: number): number {
    const rx = this.socket.rx;
    return rx.words[rx.slot(this.sg ? this.rxStart[i]! : i) << 2]!;
  }

  /** The frame's offset in its UMEM frame: the kernel's XDP_PACKET_HEADROOM (plus the UMEM's) unless a program moved the data. */
  rxHeadroom(i: number): number {
    return this.rxOffset(i) & ~this.frameMask;
  }

  rxLength(i: number): number {
    if (this.sg) return this.rxLen[i]!;
    const rx = this.socket.rx;
    return rx.words[(rx.slot(i) << 2) + 2]!;
  }

  rxSegments(i: number): number {
    return this.sg ? this.rxStart[i + 1]! - this.rxStart[i]! : 1;
  }

  rxSegmentOffset(i: number, k: number): number {
    const rx = this.socket.rx;
    return rx.words[rx.slot((this.sg ? this.rxStart[i]! : i) + k) << 2]!;
  }

  rxSegmentLength(i: number, k: number): number {
    const rx = this.socket.rx;
    return rx.words[(rx.slot((this.sg ? this.rxStart[i]! : i) + k) << 2) + 2]!;
  }

  rxRelease(n: number): void {
    const rx = this.socket.rx;
    if (n > this.peeked) n = this.peeked;
    if (n < this.peeked) this.counters.rxDeferred++;
    const words = rx.words;
    // Every descriptor of the frames taken goes back to the pool: with multi-buffer, all of each frame's.
    const descs = this.sg ? this.rxStart[n]! : n;
    if (this.sg) for (let i = 0; i < n; i++) if (this.rxStart[i + 1]! - this.rxStart[i]! > 1) this.counters.rxMultiBuffer++;
    const first = rx.slot(0);
    const mask = rx.mask;
    let bytes = 0;
    for (let i = 0; i < descs; i++) bytes += words[(((first + i) & mask) << 2) + 2]!;
    this.pool.pushFromRing(words, first, mask, descs, this.frameMask, 4);
    if (descs > 0) rx.release(descs);
    this.peeked = 0;
    this.counters.rxPackets += n;
    this.counters.rxBytes += bytes;
    this.refillFill();
  }

  /** Gives the kernel every free frame it has room for, keeping txReserve back for Tx. */
  private refillFill(): void {
    const fill = this.socket.fill;
    const spare = this.pool.count - this.txReserve;
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
  frameAccounting(): BackendFrames {
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
