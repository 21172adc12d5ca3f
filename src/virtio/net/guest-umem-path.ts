// The device's side of guest RAM as the UMEM (guest-umem=on): frames move
// between the guest's buffers and the socket without a copy.
// - TX (§5.1.6.2): a chain whose frame (after the 12-byte header) is one
//   readable buffer, with no checksum or segmentation left to do, is posted
//   in place; its used entry is written only when the kernel completes it,
//   since the guest may reuse the buffer once it is used (§2.7.8.2). Other
//   chains take TxPath's copy into a bounce frame, used at once.
// - RX (§5.1.6.3-4): each receive chain goes to the Fill ring, its first
//   buffer itself when it can hold header + frame, else a bounce frame that
//   stands in for it. When its frame comes back, the header is written in
//   front (num_buffers 1) and the chain is pushed used. Each chain the kernel
//   holds is the kernel's until it comes back, so a frame can only ever land
//   in a chain of this queue, and nothing waits for buffers that never come.
import { NetHdr } from 'virtio-spec-types';
import type { GuestMemory } from '../../memory/guest-memory';
import { DIRECT_POSTED, type GuestUmemDirect } from '../../backend/guest-umem-direct';
import { TX_BUSY } from '../../backend/net-backend';
import { type BufferBurst, BURST_HEAD, BURST_LEN, BURST_REGION, BURST_STRIDE, DescriptorChain, QueueError, type Virtqueue } from '../queue';
import type { NetQueueCounters } from './net-counters';
import { isBurstTxBuffer } from './tx-burst-buffer';

const HDR_SIZE = NetHdr.SIZE;
const HDR_NUM_BUFFERS = NetHdr.NUM_BUFFERS;
const B_HEAD = BURST_HEAD;
const B_LEN = BURST_LEN;
const B_REGION = BURST_REGION;
const B_STRIDE = BURST_STRIDE;

/** TxPath's hook: sends a chain in place, and writes used entries for what the kernel completed. */
export class GuestUmemTx {
  /** The last sendBurst stopped because the backend had no room. */
  busy = false;
  /** Frame bytes the last sendBurst posted. */
  burstBytes = 0;
  /** XOR of the bytes sendBurst read ahead (kept, so the reads are not optimised away). */
  private touched = 0;
  private readonly regions: Uint8Array[];

  constructor(private readonly d: GuestUmemDirect, mem: GuestMemory) {
    d.attach(mem);
    this.regions = Array.from(mem.regions, (_, i) => mem.regionBytes(i));
  }

  /**
   * The usual frame a burst at a time: header and frame in one readable descriptor in registered memory (a
   * runt, one over `limit`, one the kernel may not be given or anything else stops the burst: pop() takes it).
   * Each frame's first and last byte are read for the whole burst before anything is posted: the kernel's
   * copy-mode transmit reads one frame at a time between much other work, so a frame the driver's CPU just
   * wrote costs it a full cache miss each; read here, the misses overlap and the kernel finds the lines in this
   * CPU's cache. Returns frames posted (held until completed).
   */
  sendBurst(vq: Virtqueue, burst: BufferBurst, max: number, limit: number): number {
    this.busy = false;
    this.burstBytes = 0;
    const n = vq.peekBurst(burst, max);
    if (n === 0) return 0;
    const { words, offset } = burst;
    const regions = this.regions;
    const d = this.d;
    let touched = this.touched;
    let m = 0;
    for (; m < n; m++) {
      if (!isBurstTxBuffer(words, m, limit)) break;
      const w = m * B_STRIDE;
      const len = words[w + B_LEN]!;
      const r = words[w + B_REGION]!;
      const at = offset[m]! + HDR_SIZE;
      // One the kernel may not be given: pop() takes it, and txPost refuses (and counts) it once, there.
      if (!d.txTakes(r, at, len - HDR_SIZE)) break;
      const bytes = regions[r]!;
      touched ^= bytes[at]! ^ bytes[at + len - HDR_SIZE - 1]!;
    }
    this.touched = touched;
    let k = 0;
    let total = 0;
    for (; k < m; k++) {
      const w = k * B_STRIDE;
      const frameLen = words[w + B_LEN]! - HDR_SIZE;
      const result = d.txPost(words[w + B_REGION]!, offset[k]! + HDR_SIZE, frameLen, words[w + B_HEAD]!, 1);
      if (result !== DIRECT_POSTED) {
        if (result === TX_BUSY) this.busy = true;
        break;
      }
      total += frameLen;
    }
    vq.holdBurst(burst, k);
    this.burstBytes = total;
    return k;
  }

  /** DIRECT_POSTED, DIRECT_REFUSED (copy it instead) or TX_BUSY, for a chain of `frameLen` bytes behind its header. */
  send(chain: DescriptorChain, frameLen: number): number {
    if (chain.len[0]! >= HDR_SIZE + frameLen) return this.d.txPost(chain.region[0]!, chain.offset[0]! + HDR_SIZE, frameLen, chain.headId, chain.ringSlots);
    if (chain.len[0] === HDR_SIZE && chain.readableCount === 2) return this.d.txPost(chain.region[1]!, chain.offset[1]!, frameLen, chain.headId, chain.ringSlots);
    return 0;
  }

  /** Pushes every chain the kernel has completed since the last call. */
  complete(vq: Virtqueue): void {
    const d = this.d;
    const n = d.txReclaim();
    for (let k = 0; k < n; k++) vq.push(d.txDoneHead(k), 0, d.txDoneSlots(k));
    d.txDoneTaken();
  }
}

/** Takes RxPath's place when the backend's UMEM is guest RAM. */
export class GuestUmemRxPath {
  /** No receive chain in the kernel's hands and none available: wait for the guest. */
  blocked = false;
  private readonly chain: DescriptorChain;

  constructor(
    private readonly mem: GuestMemory,
    private readonly vq: Virtqueue,
    private readonly d: GuestUmemDirect,
    private readonly counters: NetQueueCounters,
  ) {
    if (HDR_SIZE !== 12) throw new Error('guest-umem path expects the 12-byte virtio-net header');
    d.attach(mem);
    this.chain = new DescriptorChain(vq.size);
  }

  dispose(): void {}

  /** Delivers what came back, then hands the kernel every chain the guest made available. Returns frames delivered. */
  process(budget: number): number {
    const delivered = this.deliver(budget);
    this.post();
    return delivered;
  }

  private deliver(budget: number): number {
    const { d, vq, mem, counters } = this;
    const t = d.rxTable;
    const n = d.rxPeek(budget);
    let done = 0;
    for (let i = 0; i < n; i++) {
      const e = d.rxEntry(i);
      if (e < 0) continue;
      const len = d.rxLength(i);
      const r = t.region[e]!;
      const o = t.offset[e]!;
      if (t.bounce[e]! >= 0) {
        if (HDR_SIZE + len > t.length[e]!) {
          // A bounce entry's chain has only its first buffer here: a frame it cannot hold is dropped, the chain kept.
          counters.rxDropTooSmall++;
          d.rxRepost(e);
          continue;
        }
        const src = d.rxData(i);
        mem.regionBytes(r).set(d.umemBytes.subarray(src, src + len), o + HDR_SIZE);
      }
      // §5.1.6.4: flags..csum_offset zero, num_buffers 1 (one buffer per frame).
      const v = mem.regionView(r);
      v.setUint32(o, 0, true);
      v.setUint32(o + 4, 0, true);
      v.setUint16(o + 8, 0, true);
      v.setUint16(o + HDR_NUM_BUFFERS, 1, true);
      vq.push(t.headId[e]!, HDR_SIZE + len, t.ringSlots[e]!);
      counters.rxFrames++;
      counters.rxBytes += len;
      done++;
    }
    d.rxRelease(n);
    return done;
  }

  private post(): void {
    const { d, vq, chain } = this;
    let none = false;
    for (;;) {
      if (!vq.pop(chain)) {
        none = true;
        break;
      }
      if (chain.readableCount > 0) {
        // §5.1.6.3: receive buffers are device-writable only.
        vq.stop(QueueError.DeviceRejected);
        break;
      }
      if (d.rxPost(chain.region[0]!, chain.offset[0]!, chain.len[0]!, chain.headId, chain.ringSlots) !== DIRECT_POSTED) {
        if (chain.len[0]! < HDR_SIZE) {
          // No room for the header in the first buffer: this path cannot fill it; give it back empty.
          this.counters.rxDropTooSmall++;
          vq.push(chain.headId, 0, chain.ringSlots);
          continue;
        }
        vq.undo();
        break;
      }
    }
    d.rxPublish();
    this.blocked = none && d.rxTable.count === 0;
  }
}
