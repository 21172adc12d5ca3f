// One AF_XDP socket whose UMEM is guest RAM (guest-umem=on): registered in
// unaligned-chunk mode (XDP_UMEM_UNALIGNED_CHUNK_FLAG), so a descriptor's
// address is any byte offset of the area, Documentation/networking/af_xdp.rst
// "XDP_UMEM_REG setsockopt". The area is the guest's RAM followed by frames
// only the VMM can address (bounce frames: frames the zero-copy path cannot
// carry are copied there, as the copy path would). Servicing rules:
// - every address handed to the kernel was checked: [addr, addr + len) lies in
//   one guest region mapped into the area (or in this queue's bounce frames),
//   len <= chunk size, and, when the driver DMAs (zero-copy bind), within one
//   contiguous unit (xp_desc_crosses_non_contig_pg): the kernel would skip an
//   invalid descriptor without ever handing it back;
// - a guest chain posted stays in an InFlightTable until the kernel gives its
//   address back; only then does the device push it used;
// - Rx (xp_get_handle): addr is the Fill address plus, in its top 16 bits
//   (XSK_UNALIGNED_BUF_OFFSET_SHIFT = 48), the data's offset from it, which is
//   XDP_PACKET_HEADROOM + the UMEM headroom while no program moves it. A
//   guest buffer goes on the Fill ring at (buffer + 12 - that offset), so the
//   frame lands right behind the virtio-net header's room; the kernel writes at
//   most chunk - offset bytes (xsk_pool_get_rx_frame_size), i.e. up to
//   Fill address + chunk, which the buffer must cover;
// - reset: the kernel keeps Fill buffers until the socket closes, so reset
//   closes it (xsk_release: unbind, then synchronize_net: no writes after) and
//   binds a fresh one.
import { xsk } from '../../native/xsk';
import type { GuestMemory } from '../../memory/guest-memory';
import { sys } from '../../native/sys';
import { TX_BUSY, TX_OVERSIZE, acquireEach, commitEach, type BackendFrames, type NetBackendQueue } from '../net-backend';
import { DIRECT_POSTED, DIRECT_REFUSED, type GuestUmemDirect } from '../guest-umem-direct';
import { flushTxRing, writeTxDescriptor } from './af-xdp-queue';
import { InFlightTable } from './in-flight-table';
import { QueueCounters } from '../queue-counters';
import type { XskSocket } from './xsk-socket';

/** UMEM chunk: the smallest the kernel takes (XDP_UMEM_MIN_CHUNK_SIZE); bounce frames are this size. */
export const GUEST_UMEM_CHUNK = 2048;
const XDP_PACKET_HEADROOM = 256;
/** UMEM headroom chosen so that a receive frame may be 1518 bytes (1500 MTU, Ethernet header, one VLAN tag). */
export const GUEST_UMEM_HEADROOM = 274;
/** Where Rx data starts after its Fill address. */
const RX_DATA_OFFSET = XDP_PACKET_HEADROOM + GUEST_UMEM_HEADROOM;
/** The longest frame the kernel writes into one receive chunk. */
export const GUEST_UMEM_RX_ROOM = GUEST_UMEM_CHUNK - RX_DATA_OFFSET;
/** The virtio-net header in front of every received frame (§5.1.6, 12 bytes with VERSION_1). */
const NET_HDR = 12;
const ADDR_MASK_HI = 0xffff; // high word of a 48-bit address
const TWO_POW_32 = 0x1_0000_0000;
/** The most a frame can be in guest memory on a zero-copy (DMA) bind without huge pages: a 4 KiB page. */
const SMALL_PAGE = 4096;
/** What a bounce frame is out for. */
const BOUNCE_TX = 1;
const BOUNCE_RX = 2;
/** locate(): not wholly inside a registered region (or longer than a chunk); inside, but across a DMA unit. */
const OUTSIDE = -1;
const CROSSES_UNIT = -2;

export class GuestUmemCounters {
  /** Frames sent from guest memory in place / copied to a bounce frame first. */
  txDirect = 0;
  txBounced = 0;
  /** Posted chains the kernel completed (their used entries were then written). */
  txDirectCompleted = 0;
  /** Frames received into guest buffers in place / through a bounce frame. */
  rxDirect = 0;
  rxBounced = 0;
  /** Bounce frames whose frame did not fit the chain's first buffer: dropped, the chain posted again. */
  rxBounceTooSmall = 0;
  /** Guest buffers refused for the direct path because they were not wholly inside registered memory. */
  refusedOutside = 0;
  /** Addresses the kernel handed back that no posted buffer held (never acted on). */
  unknownCompletions = 0;
  unknownRx = 0;
  /** Rx frames at an offset other than the one the buffer was posted for: dropped, buffer posted again. */
  rxBadOffset = 0;
  /** Sockets closed and rebound by a device reset. */
  resets = 0;
}

export interface GuestUmemQueueOptions {
  socket: XskSocket;
  /** Bytes of the area that are guest RAM (the bounce frames come after). */
  guestLength: number;
  /** UMEM address of this queue's first bounce frame, and how many it has. */
  bounceStart: number;
  bounceCount: number;
  /** Guest RAM is on huge pages (a zero-copy bind may then DMA across 4 KiB pages within a 2 MiB one). */
  hugePages: boolean;
  /** Closes nothing: opens a fresh socket on the same queue and UMEM (reset). */
  reopen(old: XskSocket): XskSocket;
}

export class GuestUmemQueue implements NetBackendQueue, GuestUmemDirect {
  readonly counters = new QueueCounters();
  readonly direct = new GuestUmemCounters();
  readonly guestUmem: GuestUmemDirect = this;
  readonly maxFrameSize = GUEST_UMEM_CHUNK;
  readonly rxRoom = GUEST_UMEM_RX_ROOM;
  readonly txBuffer: Uint8Array;
  readonly rxBuffer: Uint8Array;
  readonly umemBytes: Uint8Array;
  readonly rxTable: InFlightTable;
  private readonly txTable: InFlightTable;
  socket: XskSocket;
  /** Region i of the attached memory starts at UMEM address regionStart[i] (-1: not in the UMEM). */
  private regionStart = new Float64Array(0);
  private regionLength = new Float64Array(0);
  private contiguous: number;
  // Bounce frames not in any ring: a stack of UMEM addresses, and which are out.
  private readonly bounceStack: Float64Array;
  private bounceFree = 0;
  private readonly bounceOut: Uint8Array;
  private readonly doneHead: Int32Array;
  private readonly doneSlots: Int32Array;
  private txPending = 0;
  private fillPending = 0;
  private peeked = 0;
  private readonly reposted: Uint8Array;
  /** rxTable entry of each peeked frame (-2: not looked at, -1: unknown). */
  private readonly peekEntry: Int32Array;

  constructor(private readonly o: GuestUmemQueueOptions) {
    this.socket = o.socket;
    this.txBuffer = this.rxBuffer = this.umemBytes = new Uint8Array(o.socket.umem);
    const { txSize, fillSize } = o.socket.config;
    this.txTable = new InFlightTable(txSize);
    this.rxTable = new InFlightTable(fillSize);
    // At most every posted chain is done at once.
    this.doneHead = new Int32Array(txSize);
    this.doneSlots = new Int32Array(txSize);
    this.reposted = new Uint8Array(fillSize);
    this.peekEntry = new Int32Array(o.socket.config.rxSize);
    this.bounceStack = new Float64Array(o.bounceCount);
    this.bounceOut = new Uint8Array(o.bounceCount);
    this.contiguous = this.contiguousUnit();
    this.refillBounce();
  }

  /** Where this queue's part of the area is: what an I/O thread needs to build the same queue over the socket. */
  get layout(): { guestLength: number; bounceStart: number; bounceCount: number; hugePages: boolean } {
    const { guestLength, bounceStart, bounceCount, hugePages } = this.o;
    return { guestLength, bounceStart, bounceCount, hugePages };
  }

  get pollFd(): number {
    return this.socket.fd;
  }

  get queueId(): number {
    return this.socket.config.queueId;
  }

  get txInFlight(): number {
    return this.txTable.count;
  }

  /** Copy mode (no DMA) reads the area through one kernel mapping: any range is fine. A DMA bind is not. */
  private contiguousUnit(): number {
    if (!this.socket.zeroCopy) return Number.POSITIVE_INFINITY;
    return this.o.hugePages ? 2 << 20 : SMALL_PAGE;
  }

  private refillBounce(): void {
    this.bounceOut.fill(0);
    for (let k = this.o.bounceCount - 1; k >= 0; k--) this.bounceStack[this.o.bounceCount - 1 - k] = this.o.bounceStart + k * GUEST_UMEM_CHUNK;
    this.bounceFree = this.o.bounceCount;
  }

  attach(memory: GuestMemory): void {
    const area = sys.addressOf(this.socket.umem);
    const n = memory.regionCount;
    this.regionStart = new Float64Array(n).fill(-1);
    this.regionLength = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const b = memory.regionBytes(i);
      const at = Number(sys.addressOf(b.buffer as ArrayBuffer) - area) + b.byteOffset;
      // Only memory wholly inside the guest part of the area: the bounce frames stay the VMM's.
      if (at >= 0 && at + b.byteLength <= this.o.guestLength) {
        this.regionStart[i] = at;
        this.regionLength[i] = b.byteLength;
      }
    }
  }

  /** UMEM address of [offset, offset + len) in region `r` when the kernel may be given it, else OUTSIDE or CROSSES_UNIT. */
  private locate(r: number, offset: number, len: number): number {
    const start = r >= 0 && r < this.regionStart.length ? this.regionStart[r]! : -1;
    if (start < 0 || offset < 0 || len > GUEST_UMEM_CHUNK || offset + len > this.regionLength[r]!) return OUTSIDE;
    const a = start + offset;
    const unit = this.contiguous;
    if (unit !== Number.POSITIVE_INFINITY && (a % unit) + len > unit) return CROSSES_UNIT;
    return a;
  }

  /** locate(), counting a range outside registered memory; -1 for any refusal. */
  private umemAddress(r: number, offset: number, len: number): number {
    const a = this.locate(r, offset, len);
    if (a >= 0) return a;
    if (a === OUTSIDE) this.direct.refusedOutside++;
    return -1;
  }

  txTakes(region: number, offset: number, len: number): boolean {
    return this.locate(region, offset, len) >= 0;
  }

  // ---- bounce frames (NetBackendQueue, the copy path) ----

  /** A free bounce frame for `use` (BOUNCE_TX or BOUNCE_RX), or -1. */
  private bounceTake(use: number): number {
    if (this.bounceFree === 0) return -1;
    const a = this.bounceStack[--this.bounceFree]!;
    this.bounceOut[(a - this.o.bounceStart) / GUEST_UMEM_CHUNK] = use;
    return a;
  }

  /**
   * A bounce frame handed back: true if it was one of ours and out for `use` (a completion naming a frame on
   * the Fill ring is not taken: the kernel may still write into it).
   */
  private bounceGive(a: number, use: number): boolean {
    const rel = a - this.o.bounceStart;
    const k = rel / GUEST_UMEM_CHUNK;
    if (rel < 0 || k >= this.o.bounceCount || (rel & (GUEST_UMEM_CHUNK - 1)) !== 0 || this.bounceOut[k] !== use) return false;
    this.bounceOut[k] = 0;
    this.bounceStack[this.bounceFree++] = a;
    return true;
  }

  private isBounce(a: number): boolean {
    return a >= this.o.bounceStart && a < this.o.bounceStart + this.o.bounceCount * GUEST_UMEM_CHUNK;
  }

  txAcquire(length: number): number {
    if (length > GUEST_UMEM_CHUNK) {
      this.counters.txDropOversize++;
      return TX_OVERSIZE;
    }
    if (this.socket.tx.free(this.txPending + 1) - this.txPending <= 0) {
      this.txReclaim();
      this.counters.txBusy++;
      return TX_BUSY;
    }
    const a = this.bounceTake(BOUNCE_TX);
    if (a < 0) {
      this.counters.txBusy++;
      return TX_BUSY;
    }
    return a;
  }

  txCommit(offset: number, length: number): void {
    this.writeTx(offset, length);
    this.direct.txBounced++;
  }

  txAcquireBurst(lengths: Uint32Array, offsets: Float64Array, n: number): number {
    return acquireEach(this, lengths, offsets, n);
  }

  txCommitBurst(offsets: Float64Array, lengths: Uint32Array, n: number): void {
    commitEach(this, offsets, lengths, n);
  }

  txCancel(offset: number): void {
    this.bounceGive(offset, BOUNCE_TX);
  }

  private writeTx(addr: number, length: number): void {
    writeTxDescriptor(this.socket, this.counters, this.txPending, addr >>> 0, Math.floor(addr / TWO_POW_32) & ADDR_MASK_HI, length);
    this.txPending++;
  }

  txFlush(): void {
    flushTxRing(this.socket, this.counters, this.txPending);
    this.txPending = 0;
  }

  txUnsent(): number {
    return this.socket.tx.pending();
  }

  // ---- guest -> wire, in place ----

  txPost(region: number, offset: number, len: number, headId: number, ringSlots: number): number {
    const a = this.umemAddress(region, offset, len);
    if (a < 0) return DIRECT_REFUSED;
    if (this.txTable.room === 0 || this.socket.tx.free(this.txPending + 1) - this.txPending <= 0) {
      this.txReclaim();
      this.counters.txBusy++;
      return TX_BUSY;
    }
    this.txTable.add(a, headId, ringSlots);
    this.writeTx(a, len);
    this.direct.txDirect++;
    return DIRECT_POSTED;
  }

  private doneCount = 0;

  txReclaim(): number {
    const comp = this.socket.completion;
    const n = comp.available(comp.size);
    let done = this.doneCount;
    if (n > 0) {
      const words = comp.words;
      for (let i = 0; i < n; i++) {
        const w = comp.slot(i) << 1;
        const a = words[w]! + (words[w + 1]! & ADDR_MASK_HI) * TWO_POW_32;
        if (this.isBounce(a)) {
          if (!this.bounceGive(a, BOUNCE_TX)) this.direct.unknownCompletions++;
          continue;
        }
        const e = this.txTable.find(a);
        if (e < 0 || done === this.doneHead.length) {
          this.direct.unknownCompletions++;
          continue;
        }
        this.doneHead[done] = this.txTable.headId[e]!;
        this.doneSlots[done] = this.txTable.ringSlots[e]!;
        done++;
        this.txTable.remove(e);
      }
      comp.release(n);
      this.counters.txCompletions += n;
    }
    this.doneCount = done;
    return done;
  }

  txDoneHead(k: number): number {
    return this.doneHead[k]!;
  }

  txDoneSlots(k: number): number {
    return this.doneSlots[k]!;
  }

  /** The device pushed the done chains txReclaim reported. */
  txDoneTaken(): void {
    this.direct.txDirectCompleted += this.doneCount;
    this.doneCount = 0;
  }

  // ---- wire -> guest ----

  rxPost(region: number, offset: number, len: number, headId: number, ringSlots: number): number {
    const fill = this.socket.fill;
    if (this.rxTable.room === 0 || fill.free(this.fillPending + 1) - this.fillPending <= 0) return DIRECT_REFUSED;
    let fillAddr = -1;
    if (len >= NET_HDR + GUEST_UMEM_RX_ROOM && offset + NET_HDR >= RX_DATA_OFFSET) {
      // The kernel's chunk [fillAddr, fillAddr + chunk) must lie in the same region: the area maps
      // regions side by side, and the bytes before the buffer are the guest's (written only by a
      // program that moves the data start, which ours never does).
      fillAddr = this.umemAddress(region, offset + NET_HDR - RX_DATA_OFFSET, GUEST_UMEM_CHUNK);
    }
    let bounce = -1;
    if (fillAddr < 0) {
      if (len < NET_HDR) return DIRECT_REFUSED;
      bounce = this.bounceTake(BOUNCE_RX);
      if (bounce < 0) return DIRECT_REFUSED;
      fillAddr = bounce;
    }
    const e = this.rxTable.add(fillAddr, headId, ringSlots);
    this.rxTable.region[e] = region;
    this.rxTable.offset[e] = offset;
    this.rxTable.length[e] = len;
    this.rxTable.bounce[e] = bounce;
    this.writeFill(fillAddr);
    return DIRECT_POSTED;
  }

  private writeFill(addr: number): void {
    const fill = this.socket.fill;
    const w = fill.slot(this.fillPending) << 1;
    fill.words[w] = addr >>> 0;
    fill.words[w + 1] = Math.floor(addr / TWO_POW_32) & ADDR_MASK_HI;
    this.fillPending++;
  }

  rxPublish(): void {
    const fill = this.socket.fill;
    if (this.fillPending > 0) {
      fill.submit(this.fillPending);
      this.fillPending = 0;
      this.counters.fillRefills++;
    }
    if (fill.needsWakeup() && this.rxTable.count > 0) {
      this.counters.rxKicks++;
      xsk.kickRx(this.socket.fd);
    }
  }

  rxPeek(max: number): number {
    const n = this.socket.rx.available(max);
    this.peekEntry.fill(-2, 0, n);
    this.peeked = n;
    return n;
  }

  rxOffset(i: number): number {
    return this.rxData(i);
  }

  /** The guest-umem path writes the header itself (GuestUmemRxPath); nothing is promised before a frame. */
  rxHeadroom(_i: number): number {
    return 0;
  }

  rxLength(i: number): number {
    const rx = this.socket.rx;
    return rx.words[(rx.slot(i) << 2) + 2]!;
  }

  rxData(i: number): number {
    const rx = this.socket.rx;
    const w = rx.slot(i) << 2;
    const hi = rx.words[w + 1]!;
    return rx.words[w]! + (hi & ADDR_MASK_HI) * TWO_POW_32 + (hi >>> 16);
  }

  rxEntry(i: number): number {
    const rx = this.socket.rx;
    const w = rx.slot(i) << 2;
    const hi = rx.words[w + 1]!;
    const base = rx.words[w]! + (hi & ADDR_MASK_HI) * TWO_POW_32;
    const e = this.rxTable.find(base);
    this.peekEntry[i] = e;
    if (e < 0) {
      this.direct.unknownRx++;
      return -1;
    }
    // Claimed: the same address twice in this batch (a buffer posted twice, or a kernel bug) is two entries or unknown.
    this.rxTable.claim(e);
    const len = rx.words[w + 2]!;
    if (hi >>> 16 !== RX_DATA_OFFSET || len > GUEST_UMEM_RX_ROOM) {
      this.direct.rxBadOffset++;
      this.rxRepost(e);
      return -1;
    }
    if (this.rxTable.bounce[e]! >= 0) this.direct.rxBounced++;
    else this.direct.rxDirect++;
    return e;
  }

  rxRepost(e: number): void {
    this.reposted[e] = 1;
  }

  rxRelease(n: number): void {
    const rx = this.socket.rx;
    if (n > this.peeked) n = this.peeked;
    const words = rx.words;
    const t = this.rxTable;
    let bytes = 0;
    for (let i = 0; i < n; i++) {
      bytes += words[(rx.slot(i) << 2) + 2]!;
      if (this.peekEntry[i] === -2 && this.rxEntry(i) >= 0) this.rxRepost(this.peekEntry[i]!);
      const e = this.peekEntry[i]!;
      if (e < 0) continue;
      if (this.reposted[e] === 1) {
        // Dropped: the same buffer goes back on the Fill ring (there is room: it just left it).
        this.reposted[e] = 0;
        t.unclaim(e);
        this.writeFill(t.addr[e]!);
        continue;
      }
      const b = t.bounce[e]!;
      if (b >= 0) this.bounceGive(b, BOUNCE_RX);
      t.remove(e);
    }
    // Frames left on the Rx ring are offered again at the next peek.
    for (let i = n; i < this.peeked; i++) if (this.peekEntry[i]! >= 0) t.unclaim(this.peekEntry[i]!);
    if (n > 0) rx.release(n);
    this.peeked = 0;
    this.counters.rxPackets += n;
    this.counters.rxBytes += bytes;
    this.rxPublish();
  }

  // ---- reset and accounting ----

  reset(): void {
    if (!this.release()) return;
    const old = this.socket;
    old.close();
    this.adopt(this.o.reopen(old));
  }

  /**
   * First half of reset, for a queue whose socket another thread owns (an I/O thread): forgets every guest
   * buffer posted to the kernel and returns true when there were any. The socket must then be closed and
   * this queue given a fresh one (adopt) before it is serviced again; false: the socket can stay.
   */
  release(): boolean {
    // Nothing of the guest's in the kernel's hands: the socket can stay.
    if (this.rxTable.count === 0 && this.txTable.count === 0) return false;
    this.txTable.clear();
    this.rxTable.clear();
    this.reposted.fill(0);
    this.txPending = this.fillPending = this.peeked = this.doneCount = 0;
    this.refillBounce();
    this.direct.resets++;
    return true;
  }

  /** Second half of reset: services `socket` (bound on the same queue and UMEM) from now on. */
  adopt(socket: XskSocket): void {
    this.socket = socket;
    this.contiguous = this.contiguousUnit();
  }

  /** Closes the socket and binds a fresh one whatever is in flight (the owner's half of a reset another thread released). */
  rebind(): XskSocket {
    const old = this.socket;
    old.close();
    this.adopt(this.o.reopen(old));
    return this.socket;
  }

  /** The queue's own frames are its bounce frames (guest buffers belong to the guest). */
  get frameCount(): number {
    return this.o.bounceCount;
  }

  /**
   * Where the bounce frames are: out for receiving counts as Fill (on the Fill or Rx ring), out for sending as Tx
   * (on the Tx or Completion ring); which of the two rings exactly is not tracked. Walks every frame: for reports.
   */
  frameAccounting(): BackendFrames {
    let fill = 0;
    let tx = 0;
    for (const use of this.bounceOut) {
      if (use === BOUNCE_RX) fill++;
      else if (use === BOUNCE_TX) tx++;
    }
    return { pool: this.bounceFree, fill, rx: 0, tx, completion: 0, total: this.bounceFree + fill + tx };
  }

  /** Bounce frames in no ring (all of them once the kernel is idle and nothing is posted). */
  get bounceIdle(): number {
    return this.bounceFree;
  }

  close(): void {
    this.socket.close();
    this.txTable.clear();
    this.rxTable.clear();
  }
}
