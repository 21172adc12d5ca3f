// Guest -> backend (§5.1.6.2): each TX chain is a virtio-net header plus one
// Ethernet frame. The header is stripped, the frame copied into a backend
// frame, a partial checksum completed in software when the driver asked for
// it (VIRTIO_NET_F_CSUM), and TSO frames cut into wire-size segments
// (VIRTIO_NET_F_HOST_TSO4/6) because AF_XDP has neither offload.
import { NetGsoType, NetHdr, NetHdrFlags } from 'virtio-spec-types';
import type { GuestMemory } from '../../memory/guest-memory';
import { TX_BUSY, TX_OVERSIZE, type NetBackendQueue } from '../../backend/net-backend';
import { DescriptorChain, type Virtqueue } from '../queue';
import { CopyBatch } from '../../memory/copy-batch';
import { completeChecksum } from './checksum';
import { gatherFromChain } from './frame-copy';
import type { NetQueueCounters } from './net-counters';
import { TsoSegmenter } from './tso-segmenter';

const ETH_HLEN = 14;
// Module constants: the package's exports are getters, too slow per packet.
const HDR_SIZE = NetHdr.SIZE;
const HDR_FLAGS = NetHdr.FLAGS;
const HDR_GSO_TYPE = NetHdr.GSO_TYPE;
const HDR_CSUM_START = NetHdr.CSUM_START;
const HDR_CSUM_OFFSET = NetHdr.CSUM_OFFSET;
const GSO_NONE = NetGsoType.NONE;
const GSO_ECN = NetGsoType.ECN;
const NEEDS_CSUM = NetHdrFlags.NEEDS_CSUM;
/** gso_type in `headerStart()`'s value, without the ECN bit. */
const GSO_MASK = (0xff & ~GSO_ECN) << 8;

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
  private readonly hdr = new Uint8Array(HDR_SIZE);
  private readonly hdrView = new DataView(this.hdr.buffer);
  private readonly tso: TsoSegmenter;
  /** Absolute address of each guest memory region and of the backend's Tx buffer (for batched copies). */
  private readonly regionAddress: Float64Array;
  private readonly txBase: number;

  constructor(
    private readonly mem: GuestMemory,
    private readonly vq: Virtqueue,
    private readonly be: NetBackendQueue,
    private readonly counters: NetQueueCounters,
    private readonly offloads: TxOffloads,
    private readonly batch: CopyBatch = new CopyBatch(),
  ) {
    this.chain = new DescriptorChain(vq.size);
    this.tso = new TsoSegmenter(be, counters);
    this.regionAddress = Float64Array.from(mem.regions, (_, i) => CopyBatch.addressOf(mem.regionBytes(i)));
    this.txBase = CopyBatch.addressOf(be.txBuffer);
  }

  /** Gives back the copy registrations taken at construction. */
  dispose(): void {
    for (let i = 0; i < this.mem.regions.length; i++) CopyBatch.release(this.mem.regionBytes(i));
    CopyBatch.release(this.be.txBuffer);
  }

  /** Moves up to `budget` frames to the backend and flushes it. Returns chains consumed. */
  process(budget: number): number {
    const { vq, chain, be, counters } = this;
    this.blocked = false;
    let done = 0;
    while (done < budget && vq.pop(chain)) {
      const total = chain.readableLength;
      if (total < HDR_SIZE + ETH_HLEN) {
        counters.txDropRunt++;
        vq.push(chain.headId, 0, chain.ringSlots);
        done++;
        continue;
      }
      const frameLen = total - HDR_SIZE;
      // Most frames need only flags and gso_type; the whole header is read
      // (once, and then only that snapshot is used) when they ask for more.
      let head = this.headerStart();
      if ((head & (GSO_MASK | NEEDS_CSUM)) !== GSO_NONE << 8) {
        this.readHeader();
        head = this.hdr[HDR_FLAGS]! | (this.hdr[HDR_GSO_TYPE]! << 8);
      }
      let result: number;
      if ((head & GSO_MASK) !== GSO_NONE << 8) result = this.offloads.tso ? this.tso.send(this.mem, chain, this.hdr, frameLen) : TX_OVERSIZE;
      else result = this.sendOne(frameLen, this.offloads.csum && (head & NEEDS_CSUM) !== 0);
      if (result === TX_BUSY) {
        vq.undo();
        this.blocked = true;
        counters.txBackpressure++;
        break;
      }
      if (result === TX_OVERSIZE) counters.txDropOversize++;
      vq.push(chain.headId, 0, chain.ringSlots);
      done++;
    }
    // The frames' bytes must be in place before the backend publishes them.
    this.batch.flush();
    be.txFlush();
    return done;
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

  /** Queues the copy of the chain's readable bytes [skip, skip+len) to the Tx buffer at dstOff. */
  private gatherBatched(skip: number, dstOff: number, len: number): void {
    const chain = this.chain;
    let done = 0;
    for (let i = 0; i < chain.readableCount && done < len; i++) {
      const l = chain.len[i]!;
      if (skip >= l) {
        skip -= l;
        continue;
      }
      let take = l - skip;
      if (take > len - done) take = len - done;
      this.batch.add(this.txBase + dstOff + done, this.regionAddress[chain.region[i]!]! + chain.offset[i]! + skip, take);
      done += take;
      skip = 0;
    }
  }

  /** One frame, no segmentation. Returns 0, TX_BUSY or TX_OVERSIZE (and other drops as 0, counted). */
  private sendOne(frameLen: number, csum: boolean): number {
    const { be, counters } = this;
    const off = be.txAcquire(frameLen);
    if (off < 0) return off;
    this.gatherBatched(HDR_SIZE, off, frameLen);
    if (csum) {
      // The checksum is computed over the frame in the Tx buffer: copy it now.
      this.batch.flush();
      const start = this.hdrView.getUint16(HDR_CSUM_START, true);
      const field = this.hdrView.getUint16(HDR_CSUM_OFFSET, true);
      if (start + field + 2 > frameLen) {
        be.txCancel(off);
        counters.txDropBadCsum++;
        return 0;
      }
      completeChecksum(be.txBuffer, off, frameLen, start, field);
    }
    be.txCommit(off, frameLen);
    counters.txFrames++;
    counters.txBytes += frameLen;
    return 0;
  }
}
