// Backend -> guest (§5.1.6.3, §5.1.6.4): each received frame goes into the
// guest's receive buffers behind a virtio-net header. With mergeable
// buffers (VIRTIO_NET_F_MRG_RXBUF) one frame may fill several chains and
// num_buffers says how many. When the guest has no room, the frame stays in
// the backend (nothing is lost) until the guest posts buffers. A frame the
// backend holds in several buffers (multi-buffer) is scattered from each in
// turn; with VIRTIO_NET_F_MTU one above the MTU is dropped (§5.1.4.1).
import { NetHdr, NetMtu } from 'virtio-spec-types';
import type { GuestMemory } from '../../memory/guest-memory';
import type { NetBackendQueue } from '../../backend/net-backend';
import { type BatchCopies, BufferBurst, BURST_LEN, BURST_REGION, BURST_STRIDE, BURST_WRITABLE, ChainCursor, DescriptorChain, QueueError, type Virtqueue } from '../queue';
import { CopyBatch } from '../../memory/copy-batch';
import type { NetQueueCounters } from './net-counters';

/** Chains one frame may span: a 64 KiB frame in 1 KiB buffers, generously. */
const MAX_CHAINS_PER_FRAME = 64;
// Module constants: the packages' exports are getters, too slow per packet.
const HDR_SIZE = NetHdr.SIZE;
const B_LEN = BURST_LEN;
const B_REGION = BURST_REGION;
const B_STRIDE = BURST_STRIDE;
const B_WRITABLE = BURST_WRITABLE;
const HDR_NUM_BUFFERS = NetHdr.NUM_BUFFERS;
const ETHERTYPE_VLAN = NetMtu.ETHERTYPE_VLAN;

export class RxPath {
  /** The guest ran out of receive buffers: wait for its notification. */
  blocked = false;
  private readonly chains: DescriptorChain[];
  private readonly burst: BufferBurst;
  private readonly cursor = new ChainCursor();
  private readonly hdr = new Uint8Array(HDR_SIZE);
  private readonly hdrView = new DataView(this.hdr.buffer);
  /** The batch, and the absolute addresses of guest memory and of the backend's Rx buffer it copies between. */
  private readonly copies: BatchCopies;
  /** The backend may hand a frame in several buffers (NetBackendQueue.rxSegments). */
  private readonly segmented: boolean;
  /** Largest untagged frame the MTU allows (MTU + Ethernet header); no limit when MTU is not negotiated. */
  private readonly mtuFrame: number;

  constructor(
    private readonly mem: GuestMemory,
    private readonly vq: Virtqueue,
    private readonly be: NetBackendQueue,
    private readonly counters: NetQueueCounters,
    mergeable: boolean,
    private readonly batch: CopyBatch = new CopyBatch(),
    /** VIRTIO_NET_F_MTU negotiated: the device's mtu. */
    mtu?: number,
  ) {
    this.segmented = be.rxSegments !== undefined;
    this.mtuFrame = mtu !== undefined ? mtu + NetMtu.ETH_HEADER : Number.MAX_SAFE_INTEGER;
    const n = mergeable ? MAX_CHAINS_PER_FRAME : 1;
    this.chains = Array.from({ length: n }, () => new DescriptorChain(vq.size));
    this.burst = new BufferBurst(Math.max(1, vq.size));
    const regionAddress = Float64Array.from(mem.regions, (_, i) => CopyBatch.addressOf(mem.regionBytes(i)));
    this.copies = { batch, regionAddress, hostBase: CopyBatch.addressOf(be.rxBuffer) };
  }

  /** Gives back the copy registrations taken at construction. */
  dispose(): void {
    for (let i = 0; i < this.mem.regions.length; i++) CopyBatch.release(this.mem.regionBytes(i));
    CopyBatch.release(this.be.rxBuffer);
  }

  /** Delivers up to `budget` received frames. Returns frames taken from the backend. */
  process(budget: number): number {
    this.blocked = false;
    const n = this.be.rxPeek(budget);
    let taken = 0;
    while (taken < n) {
      // Frames that fit one one-descriptor buffer a burst at a time; takeOne() whenever the next is anything else.
      const delivered = this.deliverBurst(taken, n);
      taken += delivered;
      if (delivered > 0) continue;
      if (!this.takeOne(taken)) break;
      taken++;
    }
    return this.finish(taken);
  }

  /**
   * Peeked frames from `first` on, each into one buffer of a burst: header and frame in one copy when the
   * backend leaves room for the header before the frame, else the header stored here and the frame copied.
   * Stops at the first frame that is over the MTU, in several backend buffers, or larger than its buffer
   * (takeOne drops it or spreads it over mergeable buffers), and at a buffer the driver made device-readable
   * (takeOne stops the queue). Returns frames delivered.
   */
  private deliverBurst(first: number, n: number): number {
    const { vq, be, burst } = this;
    const got = vq.peekBurst(burst, n - first);
    if (got === 0) return 0;
    const { batch, regionAddress, hostBase } = this.copies;
    const ops = batch.ops;
    const { words, offset, written } = burst;
    const rx = be.rxBuffer;
    const mtuFrame = this.mtuFrame;
    const segmented = this.segmented;
    let k = 0;
    let bytes = 0;
    for (; k < got; k++) {
      const i = first + k;
      const len = be.rxLength(i);
      const total = HDR_SIZE + len;
      const w = k * B_STRIDE;
      if (words[w + B_WRITABLE] === 0 || words[w + B_LEN]! < total || len > mtuFrame || (segmented && be.rxSegments!(i) > 1)) break;
      const off = be.rxOffset(i);
      const region = words[w + B_REGION]!;
      const dst = regionAddress[region]! + offset[k]!;
      const at = batch.slot();
      if (be.rxHeadroom(i) >= HDR_SIZE) {
        // §5.1.6.4: flags..csum_offset 0, num_buffers 1 (one buffer, mergeable or not), little-endian.
        const h = off - HDR_SIZE;
        for (let b = h; b < h + HDR_NUM_BUFFERS; b++) rx[b] = 0;
        rx[h + HDR_NUM_BUFFERS] = 1;
        rx[h + HDR_NUM_BUFFERS + 1] = 0;
        ops[at] = dst;
        ops[at + 1] = hostBase + h;
        ops[at + 2] = total;
      } else {
        this.storeHeader(region, offset[k]!, 1);
        ops[at] = dst + HDR_SIZE;
        ops[at + 1] = hostBase + off;
        ops[at + 2] = len;
      }
      written[k] = total;
      bytes += len;
    }
    vq.retireBurst(burst, k);
    this.counters.rxFrames += k;
    this.counters.rxBytes += bytes;
    return k;
  }

  /**
   * Peeked frame `i` over as many chains as it needs (mergeable buffers), or dropped when it cannot fit or is
   * over the MTU. False: stop here (no buffers for it, or the queue stopped).
   */
  private takeOne(i: number): boolean {
    const { vq, be, counters } = this;
    const len = be.rxLength(i);
    // §5.1.4.1: after MTU is negotiated the device MUST NOT pass a larger frame (taken and dropped).
    if (len > this.mtuFrame && this.overMtu(i, len)) {
      counters.rxDropOverMtu++;
      return true;
    }
    const total = HDR_SIZE + len;
    vq.mark();
    let used = 0;
    let room = 0;
    while (room < total && used < this.chains.length) {
      const c = this.chains[used]!;
      if (!vq.pop(c)) break;
      if (c.readableCount > 0) {
        // §5.1.6.3: receive buffers are device-writable only.
        vq.stop(QueueError.DeviceRejected);
        return false;
      }
      room += c.writableLength;
      used++;
    }
    if (room < total) {
      if (used === this.chains.length) {
        // The most buffers one frame may take (one without MRG_RXBUF; MAX_CHAINS_PER_FRAME with it,
        // whose buffers need only hold the header, §5.1.6.3.1) cannot hold it: drop this frame and
        // keep the buffers for the next, or the queue would wait for it forever.
        vq.rewind();
        counters.rxDropTooSmall++;
        return true;
      }
      vq.rewind();
      if (vq.broken) return false;
      counters.rxNoBuffers++;
      this.blocked = true;
      return false;
    }
    if (this.segmented && be.rxSegments!(i) > 1) this.deliverSegments(i, used);
    else this.deliver(be.rxOffset(i), len, used);
    counters.rxFrames++;
    counters.rxBytes += len;
    return true;
  }

  private finish(taken: number): number {
    // Copies out of the backend's frames must be done before they go back to it.
    this.batch.flush();
    this.be.rxRelease(taken);
    return taken;
  }

  /** Writes header + frame across `used` popped chains and pushes them. */
  private deliver(off: number, len: number, used: number): void {
    const vq = this.vq;
    let pos = 0; // bytes of the frame placed so far
    for (let k = 0; k < used; k++) {
      const c = this.chains[k]!;
      const cur = this.cursor.writable(c, 0);
      let written = 0;
      if (k === 0) written = this.writeHeader(c, cur, used);
      // Frame bytes: one batched copy per writable buffer (or part of one).
      const n = cur.scatterBatched(this.copies, off + pos, len - pos);
      pos += n;
      written += n;
      vq.push(c.headId, written, c.ringSlots);
    }
  }

  /** Over the MTU (checked only above MTU + 14): an 802.1Q-tagged frame may carry 4 bytes more. */
  private overMtu(i: number, len: number): boolean {
    // The first buffer holds the Ethernet header (a backend buffer is far larger than 14 bytes).
    const at = this.be.rxOffset(i) + 12;
    const b = this.be.rxBuffer;
    const tagged = ((b[at]! << 8) | b[at + 1]!) === ETHERTYPE_VLAN;
    return len > this.mtuFrame + (tagged ? NetMtu.VLAN_TAG : 0);
  }

  /** A header at `offset` of region `region`, which holds all 12 bytes: flags..csum_offset zero in three stores, then num_buffers (§5.1.6.4). */
  private storeHeader(region: number, offset: number, numBuffers: number): void {
    const v = this.mem.regionView(region);
    v.setUint32(offset, 0, true);
    v.setUint32(offset + 4, 0, true);
    v.setUint16(offset + 8, 0, true);
    v.setUint16(offset + HDR_NUM_BUFFERS, numBuffers, true);
  }

  /** deliver() for a frame in several backend buffers: each scattered in turn across the popped chains. */
  private deliverSegments(i: number, used: number): void {
    const { vq, be } = this;
    const segments = be.rxSegments!(i);
    let seg = 0;
    let off = be.rxSegmentOffset!(i, 0);
    let left = be.rxSegmentLength!(i, 0);
    for (let k = 0; k < used; k++) {
      const c = this.chains[k]!;
      const cur = this.cursor.writable(c, 0);
      let written = k === 0 ? this.writeHeader(c, cur, used) : 0;
      for (;;) {
        const n = cur.scatterBatched(this.copies, off, left);
        written += n;
        off += n;
        left -= n;
        if (left > 0) break; // this chain is full: the rest goes into the next
        if (++seg === segments) break;
        off = be.rxSegmentOffset!(i, seg);
        left = be.rxSegmentLength!(i, seg);
      }
      vq.push(c.headId, written, c.ringSlots);
    }
  }

  /** The virtio-net header (all zero but num_buffers), in place when the first buffer holds it; moves `cur` past it. */
  private writeHeader(c: DescriptorChain, cur: ChainCursor, used: number): number {
    const i = c.readableCount;
    if (c.len[i]! >= HDR_SIZE) {
      this.storeHeader(c.region[i]!, c.offset[i]!, used);
      cur.skip(HDR_SIZE);
      return HDR_SIZE;
    }
    this.hdr.fill(0);
    this.hdrView.setUint16(HDR_NUM_BUFFERS, used, true);
    return cur.write(this.mem, this.hdr, 0, HDR_SIZE);
  }
}
