// Guest -> backend (§5.1.6.2): each TX chain is a virtio-net header plus one
// Ethernet frame. The header is stripped, the frame copied into a backend
// frame, a partial checksum completed in software when the driver asked for
// it (VIRTIO_NET_F_CSUM), and TSO frames cut into wire-size segments
// (VIRTIO_NET_F_HOST_TSO4/6) because AF_XDP has neither offload.
import { NetGsoType, NetHdr, NetHdrFlags } from 'virtio-spec-types';
import type { GuestMemory } from '../../memory/guest-memory';
import { TX_BUSY, TX_OVERSIZE, type NetBackendQueue } from '../../backend/net-backend';
import { DescriptorChain, type Virtqueue } from '../queue';
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

  constructor(
    private readonly mem: GuestMemory,
    private readonly vq: Virtqueue,
    private readonly be: NetBackendQueue,
    private readonly counters: NetQueueCounters,
    private readonly offloads: TxOffloads,
  ) {
    this.chain = new DescriptorChain(vq.size);
    this.tso = new TsoSegmenter(be, counters);
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
      gatherFromChain(this.mem, chain, 0, this.hdr, 0, HDR_SIZE);
      const frameLen = total - HDR_SIZE;
      const gso = this.hdr[HDR_GSO_TYPE]! & ~GSO_ECN;
      let result: number;
      if (gso !== GSO_NONE) result = this.offloads.tso ? this.tso.send(this.mem, chain, this.hdr, frameLen) : TX_OVERSIZE;
      else result = this.sendOne(frameLen);
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
    be.txFlush();
    return done;
  }

  /** One frame, no segmentation. Returns 0, TX_BUSY or TX_OVERSIZE (and other drops as 0, counted). */
  private sendOne(frameLen: number): number {
    const { be, counters } = this;
    const off = be.txAcquire(frameLen);
    if (off < 0) return off;
    gatherFromChain(this.mem, this.chain, HDR_SIZE, be.txBuffer, off, frameLen);
    if (this.offloads.csum && (this.hdr[HDR_FLAGS]! & NEEDS_CSUM) !== 0) {
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
