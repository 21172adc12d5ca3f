// Guest -> backend (§5.1.6.2): each TX chain is a virtio-net header plus one
// Ethernet frame. The header is stripped, the frame copied into a backend
// frame, a partial checksum completed in software when the driver asked for
// it (VIRTIO_NET_F_CSUM), and TSO frames cut into wire-size segments
// (VIRTIO_NET_F_HOST_TSO4/6) because AF_XDP has neither offload. A frame
// larger than one backend buffer goes over several (multi-buffer,
// TxFrameLayout); with VIRTIO_NET_F_MTU one above the MTU is dropped.
import { NetGsoType, NetHdr, NetHdrFlags, NetMtu } from 'virtio-spec-types';
import type { GuestMemory } from '../../memory/guest-memory';
import { TX_BUSY, TX_OVERSIZE, type NetBackendQueue } from '../../backend/net-backend';
import { type BatchCopies, BufferBurst, BURST_LEN, BURST_REGION, BURST_STRIDE, ChainCursor, DescriptorChain, type Virtqueue } from '../queue';
import { CopyBatch } from '../../memory/copy-batch';
import { gatherFromChain, sumChain } from './frame-copy';
import type { NetQueueCounters } from './net-counters';
import { TsoSegmenter } from './tso-segmenter';
import { TxFrameLayout } from './tx-frame-layout';
import { GuestUmemTx } from './guest-umem-path';
import { isBurstTxBuffer } from './tx-burst-buffer';
import { DIRECT_POSTED } from '../../backend/guest-umem-direct';

const ETH_HLEN = 14;
// Module constants: the package's exports are getters, too slow per packet.
const HDR_SIZE = NetHdr.SIZE;
const HDR_FLAGS = NetHdr.FLAGS;
const HDR_GSO_TYPE = NetHdr.GSO_TYPE;
const HDR_CSUM_START = NetHdr.CSUM_START;
const HDR_CSUM_OFFSET = NetHdr.CSUM_OFFSET;
const B_LEN = BURST_LEN;
const B_REGION = BURST_REGION;
const B_STRIDE = BURST_STRIDE;
const GSO_NONE = NetGsoType.NONE;
const GSO_ECN = NetGsoType.ECN;
const NEEDS_CSUM = NetHdrFlags.NEEDS_CSUM;
/** Checksums held for one batch before the copies are forced (a service round takes at most SERVICE_BUDGET frames). */
const CSUM_PENDING = 512;
/** gso_type in `headerStart()`'s value, without the ECN bit. */
const GSO_MASK = (0xff & ~GSO_ECN) << 8;
const ETHERTYPE_VLAN = NetMtu.ETHERTYPE_VLAN;
const VLAN_TAG = NetMtu.VLAN_TAG;

export interface TxOffloads {
  /** VIRTIO_NET_F_CSUM negotiated: honour NEEDS_CSUM. */
  csum: boolean;
  /** HOST_TSO4/6 negotiated: accept GSO frames and segment them. */
  tso: boolean;
}

export class TxPath {
  /** The backend had no room: the queue waits until the backend is writable. */
  blocked = false;
  private readonly chain: DescriptorChain;
  private readonly cursor = new ChainCursor();
  private readonly hdr = new Uint8Array(HDR_SIZE);
  private readonly hdrView = new DataView(this.hdr.buffer);
  private readonly tso: TsoSegmenter;
  /** The batch, and the absolute addresses of guest memory and of the backend's Tx buffer it copies between. */
  private readonly copies: BatchCopies;
  /**
   * Completed checksums waiting for their frames' batched copies: (Tx buffer offsets of the high and the low
   * byte, value) triples (a frame over several buffers may split the field), stored once the batch has run (a
   * frame's bytes land only then), before the backend publishes the frames.
   */
  private readonly csums = new Float64Array(3 * CSUM_PENDING);
  private csumCount = 0;
  /** Guest RAM is the backend's UMEM: frames that qualify go in place (guest-umem-path.ts). */
  private readonly direct: GuestUmemTx | undefined;
  private readonly layout: TxFrameLayout;
  /** Largest untagged frame the MTU allows (MTU + Ethernet header; §5.1.4.2); no limit when MTU is not negotiated. */
  private readonly mtuFrame: number;
  private readonly ethertype = new Uint8Array(2);
  /** CSUM or a HOST_TSO bit negotiated: only then can the header ask the device for anything. */
  private readonly readsHeader: boolean;
  /** Neither a header to read nor the guest-umem path: frames go by sendBurst, or sendPlain. */
  private readonly plain: boolean;
  /** No header to read, guest-umem path: frames go in place by GuestUmemTx.sendBurst, or by sendByHeader. */
  private readonly directBurst: boolean;
  private readonly burst: BufferBurst;
  /** sendBurst's frames: their lengths and, once acquired, their Tx buffer offsets. */
  private readonly frameLens: Uint32Array;
  private readonly frameOffsets: Float64Array;
  /** Longest buffer (header included) sendBurst takes: the frame within the MTU and one Tx buffer. */
  private readonly burstLimit: number;

  constructor(
    private readonly mem: GuestMemory,
    private readonly vq: Virtqueue,
    private readonly be: NetBackendQueue,
    private readonly counters: NetQueueCounters,
    private readonly offloads: TxOffloads,
    private readonly batch: CopyBatch = new CopyBatch(),
    /** VIRTIO_NET_F_MTU negotiated: the device's mtu. */
    mtu?: number,
  ) {
    this.chain = new DescriptorChain(vq.size);
    const regionAddress = Float64Array.from(mem.regions, (_, i) => CopyBatch.addressOf(mem.regionBytes(i)));
    this.copies = { batch, regionAddress, hostBase: CopyBatch.addressOf(be.txBuffer) };
    this.layout = new TxFrameLayout(be);
    this.mtuFrame = mtu !== undefined ? mtu + ETH_HLEN : Number.MAX_SAFE_INTEGER;
    this.tso = new TsoSegmenter(be, counters, this.copies, this.layout, mtu ?? Number.MAX_SAFE_INTEGER);
    this.direct = be.guestUmem ? new GuestUmemTx(be.guestUmem, mem) : undefined;
    this.readsHeader = offloads.csum || offloads.tso;
    this.plain = !this.readsHeader && this.direct === undefined;
    this.directBurst = !this.readsHeader && this.direct !== undefined;
    this.burst = new BufferBurst(Math.max(1, vq.size));
    this.frameLens = new Uint32Array(this.burst.capacity);
    this.frameOffsets = new Float64Array(this.burst.capacity);
    this.burstLimit = HDR_SIZE + Math.min(this.mtuFrame, this.layout.segment, be.maxFrameSize);
  }

  /** Gives back the copy registrations taken at construction. */
  dispose(): void {
    for (let i = 0; i < this.mem.regions.length; i++) CopyBatch.release(this.mem.regionBytes(i));
    CopyBatch.release(this.be.txBuffer);
  }

  /**
   * Moves up to `budget` frames to the backend and flushes it. Returns chains consumed. `publishUsed` runs
   * once the frames' bytes are copied, before the backend's flush: a copied chain's buffer is the guest's
   * again, and the driver refills it while the kernel transmits (copy-mode xmit is a syscall of ~0.4 µs a
   * frame; publishing after it leaves the driver idle that long, the device idle while the driver refills).
   */
  process(budget: number, publishUsed?: () => void): number {
    const { vq, chain, be, counters } = this;
    this.blocked = false;
    this.direct?.complete(vq);
    let done = 0;
    const { plain, directBurst } = this;
    while (done < budget) {
      // Plain frames a burst at a time; pop() takes one chain whenever the next is anything else.
      if (plain) {
        const sent = this.sendBurst(budget - done);
        done += sent;
        if (this.blocked) break;
        if (sent > 0) continue;
      } else if (directBurst) {
        const direct = this.direct!;
        const sent = direct.sendBurst(vq, this.burst, budget - done, this.burstLimit);
        done += sent;
        counters.txFrames += sent;
        counters.txBytes += direct.burstBytes;
        if (direct.busy) {
          this.blocked = true;
          counters.txBackpressure++;
          break;
        }
        if (sent > 0) continue;
      }
      if (!vq.pop(chain)) break;
      const total = chain.readableLength;
      let result: number;
      if (total < HDR_SIZE + ETH_HLEN) {
        counters.txDropRunt++;
        result = 0;
      } else result = plain ? this.sendPlain(total - HDR_SIZE) : this.sendByHeader(total - HDR_SIZE);
      if (result === TX_BUSY) {
        vq.undo();
        this.blocked = true;
        counters.txBackpressure++;
        break;
      }
      // A posted chain is used once the kernel completes it (GuestUmemTx.complete); any other is done with.
      if (result !== DIRECT_POSTED) {
        if (result === TX_OVERSIZE) counters.txDropOversize++;
        vq.push(chain.headId, 0, chain.ringSlots);
      }
      done++;
    }
    // The frames' bytes (and their checksums) must be in place before the backend publishes them.
    this.flushCopies();
    publishUsed?.();
    be.txFlush();
    return done;
  }

  /**
   * The usual frame of a plain queue, a burst at a time: header and frame in one descriptor, no larger than
   * the MTU allows or one Tx buffer holds. One copy each; the burst is returned used in one go. Stops at the
   * first other buffer (sendPlain takes it through pop) or when the backend is full. Returns frames sent.
   */
  private sendBurst(max: number): number {
    const { vq, burst, be } = this;
    // No more than one batch of copies holds (CopyBatch.reserve).
    const n = vq.peekBurst(burst, max < this.batch.capacity ? max : this.batch.capacity);
    if (n === 0) return 0;
    const { words, offset } = burst;
    const { frameLens, frameOffsets } = this;
    const limit = this.burstLimit;
    let m = 0;
    for (; m < n; m++) {
      // A runt, an empty transmit buffer (device-writable: nothing to read) or one over the MTU: sendPlain's.
      if (!isBurstTxBuffer(words, m, limit)) break;
      frameLens[m] = words[m * B_STRIDE + B_LEN]! - HDR_SIZE;
    }
    if (m === 0) return 0;
    const k = be.txAcquireBurst(frameLens, frameOffsets, m);
    if (k < m) {
      this.blocked = true;
      this.counters.txBackpressure++;
    }
    const { batch, regionAddress, hostBase } = this.copies;
    const ops = batch.ops;
    let bytes = 0;
    for (let i = 0, at = batch.reserve(k); i < k; i++, at += 3) {
      const frameLen = frameLens[i]!;
      ops[at] = hostBase + frameOffsets[i]!;
      ops[at + 1] = regionAddress[words[i * B_STRIDE + B_REGION]!]! + offset[i]! + HDR_SIZE;
      ops[at + 2] = frameLen;
      bytes += frameLen;
    }
    be.txCommitBurst(frameOffsets, frameLens, k);
    vq.retireBurst(burst, k);
    this.counters.txFrames += k;
    this.counters.txBytes += bytes;
    return k;
  }

  /**
   * A frame whose header is not read: §5.1.6.2.1, without CSUM the driver sets flags to 0 and without HOST_TSO*
   * gso_type to NONE, so it asks nothing of the device. Skipping it also saves a cache miss a frame (the driver
   * just wrote the header on another CPU; the batched copy prefetches that line instead). 0, TX_BUSY or TX_OVERSIZE.
   */
  private sendPlain(frameLen: number): number {
    // §5.1.4.2: a driver that negotiated MTU sends nothing larger.
    if (frameLen > this.mtuFrame && this.overMtu(frameLen)) {
      this.counters.txDropOverMtu++;
      return 0;
    }
    return this.sendOne(frameLen, false);
  }

  /**
   * A frame after its header's flags and gso_type: checksum, segmentation or the guest-umem path. Most frames
   * need only those two bytes; the whole header is read (once, and then only that snapshot is used) when they
   * ask for more. 0, TX_BUSY, TX_OVERSIZE or DIRECT_POSTED (counted).
   */
  private sendByHeader(frameLen: number): number {
    let head = GSO_NONE << 8;
    if (this.readsHeader) {
      head = this.headerStart();
      if ((head & (GSO_MASK | NEEDS_CSUM)) !== GSO_NONE << 8) {
        this.readHeader();
        head = this.hdr[HDR_FLAGS]! | (this.hdr[HDR_GSO_TYPE]! << 8);
      }
    }
    const gso = (head & GSO_MASK) !== GSO_NONE << 8;
    // §5.1.4.2 (GSO frames: per segment, TsoSegmenter).
    if (frameLen > this.mtuFrame && !gso && this.overMtu(frameLen)) {
      this.counters.txDropOverMtu++;
      return 0;
    }
    if (gso) return this.offloads.tso ? this.tso.send(this.mem, this.chain, this.hdr, frameLen) : TX_OVERSIZE;
    const csum = this.offloads.csum && (head & NEEDS_CSUM) !== 0;
    if (this.direct && !csum) {
      const result = this.direct.send(this.chain, frameLen);
      if (result === DIRECT_POSTED) {
        this.counters.txFrames++;
        this.counters.txBytes += frameLen;
        return result;
      }
      if (result === TX_BUSY) return result;
    }
    return this.sendOne(frameLen, csum);
  }

  /** Runs the queued copies, then stores the checksums that belong in the copied frames. */
  private flushCopies(): void {
    this.batch.flush();
    const { csums } = this;
    const buf = this.be.txBuffer;
    for (let k = 0; k < this.csumCount; k++) {
      const v = csums[3 * k + 2]!;
      buf[csums[3 * k]!] = v >> 8;
      buf[csums[3 * k + 1]!] = v & 0xff;
    }
    this.csumCount = 0;
  }

  /** flags | gso_type << 8, the header's first two bytes: in place when the first buffer holds them (the usual layout). */
  private headerStart(): number {
    const chain = this.chain;
    if (chain.len[0]! >= 2) return this.mem.regionView(chain.region[0]!).getUint16(chain.offset[0]!, true);
    gatherFromChain(this.mem, chain, 0, this.hdr, 0, 2);
    return this.hdr[HDR_FLAGS]! | (this.hdr[HDR_GSO_TYPE]! << 8);
  }

  /** The whole virtio-net header into this.hdr: in place when the first buffer holds it. */
  private readHeader(): void {
    const chain = this.chain;
    if (chain.len[0]! >= HDR_SIZE) {
      const b = this.mem.regionBytes(chain.region[0]!);
      const o = chain.offset[0]!;
      const h = this.hdr;
      for (let k = 0; k < HDR_SIZE; k++) h[k] = b[o + k]!;
    } else gatherFromChain(this.mem, chain, 0, this.hdr, 0, HDR_SIZE);
  }

  /** Over the MTU (checked only for frames longer than MTU + 14): an 802.1Q-tagged frame may carry 4 bytes more. */
  private overMtu(frameLen: number): boolean {
    gatherFromChain(this.mem, this.chain, HDR_SIZE + 12, this.ethertype, 0, 2);
    const tagged = ((this.ethertype[0]! << 8) | this.ethertype[1]!) === ETHERTYPE_VLAN;
    return frameLen > this.mtuFrame + (tagged ? VLAN_TAG : 0);
  }

  /** One frame, no segmentation. Returns 0, TX_BUSY or TX_OVERSIZE (and other drops as 0, counted). */
  private sendOne(frameLen: number, csum: boolean): number {
    const { be, counters } = this;
    if (csum && !this.checksumFits(frameLen)) {
      counters.txDropBadCsum++;
      return 0;
    }
    const off = be.txAcquire(frameLen);
    if (off < 0) return off;
    const chain = this.chain;
    if (chain.readableCount === 1 && frameLen <= this.layout.segment) {
      // Header and frame in one buffer (the usual layout), frame in one Tx buffer: one copy, no cursor walk.
      const { batch, regionAddress, hostBase } = this.copies;
      const at = batch.slot();
      batch.ops[at] = hostBase + off;
      batch.ops[at + 1] = regionAddress[chain.region[0]!]! + chain.offset[0]! + HDR_SIZE;
      batch.ops[at + 2] = frameLen;
    } else this.layout.gather(this.cursor.readable(chain, HDR_SIZE), this.copies, off, 0, frameLen);
    if (csum) this.queueChecksum(off, frameLen);
    be.txCommit(off, frameLen);
    counters.txFrames++;
    counters.txBytes += frameLen;
    return 0;
  }

  /** The header's csum_start + csum_offset leaves room for the 2-byte field inside the frame. */
  private checksumFits(frameLen: number): boolean {
    return this.hdrView.getUint16(HDR_CSUM_START, true) + this.hdrView.getUint16(HDR_CSUM_OFFSET, true) + 2 <= frameLen;
  }

  /**
   * §5.1.6.2 NEEDS_CSUM: the sum from csum_start to the end (the field holds the driver's partial sum),
   * complemented, at csum_start + csum_offset. Summed in guest memory, so the frame's copy (acquired at `off`)
   * stays in the batch; the result is stored once the batch has run. A guest that rewrites the frame meanwhile
   * spoils only its own checksum.
   */
  private queueChecksum(off: number, frameLen: number): void {
    const start = this.hdrView.getUint16(HDR_CSUM_START, true);
    const field = this.hdrView.getUint16(HDR_CSUM_OFFSET, true);
    let c = ~sumChain(this.mem, this.chain, HDR_SIZE + start, frameLen - start) & 0xffff;
    // A UDP checksum of 0 means "none"; RFC 768 transmits it as all ones.
    if (c === 0) c = 0xffff;
    if (this.csumCount === CSUM_PENDING) this.flushCopies();
    const k = 3 * this.csumCount;
    this.csums[k] = this.layout.byteAt(off, start + field);
    this.csums[k + 1] = this.layout.byteAt(off, start + field + 1);
    this.csums[k + 2] = c;
    this.csumCount++;
  }
}
