// Software TCP segmentation offload (VIRTIO_NET_F_HOST_TSO4/6, §5.1.6.2):
// the guest hands one large TCP segment with gso_size = MSS; AF_XDP sends
// only wire-size frames, so the device cuts it into MSS-payload segments,
// each with its own IP length/id/checksum and TCP sequence number, flags and
// checksum (computed from scratch: the guest's partial sum is not reused).
import { NetHdr } from 'virtio-spec-types';
import type { GuestMemory } from '../../memory/guest-memory';
import { TX_BUSY, TX_OVERSIZE, type NetBackendQueue } from '../../backend/net-backend';
import type { DescriptorChain } from '../queue';
import { onesComplementSum } from './checksum';
import { gatherFromChain } from './frame-copy';
import type { NetQueueCounters } from './net-counters';

const MAX_GSO_FRAME = 65536 + 256;
const MAX_SEGMENTS = 512;
const ETHERTYPE_IPV4 = 0x0800;
const ETHERTYPE_IPV6 = 0x86dd;
const ETHERTYPE_VLAN = 0x8100;
const PROTO_TCP = 6;
const TCP_FIN = 0x01;
const TCP_PSH = 0x08;
const TCP_CWR = 0x80;

export class TsoSegmenter {
  private readonly frame = new Uint8Array(MAX_GSO_FRAME);
  private readonly view = new DataView(this.frame.buffer);
  private readonly offsets = new Float64Array(MAX_SEGMENTS);
  private readonly pseudo = new Uint8Array(40);
  private readonly pseudoView = new DataView(this.pseudo.buffer);

  constructor(private readonly be: NetBackendQueue, private readonly counters: NetQueueCounters) {}

  /**
   * Segments and queues the chain's frame. Returns 0 (sent, or dropped and
   * counted as txDropUnsegmentable), TX_BUSY, or TX_OVERSIZE (larger than any
   * GSO frame, or a segment the backend refused).
   */
  send(mem: GuestMemory, chain: DescriptorChain, hdr: Uint8Array, frameLen: number): number {
    const { frame, view, be } = this;
    if (frameLen > MAX_GSO_FRAME) return TX_OVERSIZE;
    const mss = hdr[NetHdr.GSO_SIZE]! | (hdr[NetHdr.GSO_SIZE + 1]! << 8);
    gatherFromChain(mem, chain, NetHdr.SIZE, frame, 0, frameLen);
    // Parse what we rewrite; anything unexpected is a frame we cannot segment.
    let l3 = 14;
    let ethertype = view.getUint16(12);
    if (ethertype === ETHERTYPE_VLAN) {
      ethertype = view.getUint16(16);
      l3 = 18;
    }
    let l4: number;
    const v4 = ethertype === ETHERTYPE_IPV4;
    if (v4) {
      if (frameLen < l3 + 20 || frame[l3 + 9] !== PROTO_TCP) return this.unsegmentable();
      l4 = l3 + (frame[l3]! & 0x0f) * 4;
    } else if (ethertype === ETHERTYPE_IPV6) {
      if (frameLen < l3 + 40 || frame[l3 + 6] !== PROTO_TCP) return this.unsegmentable();
      l4 = l3 + 40;
    } else return this.unsegmentable();
    if (frameLen < l4 + 20) return this.unsegmentable();
    const hl = l4 + (frame[l4 + 12]! >> 4) * 4;
    const payload = frameLen - hl;
    if (mss === 0 || hl > frameLen || hl + mss > be.maxFrameSize) return this.unsegmentable();
    const nseg = Math.max(1, Math.ceil(payload / mss));
    if (nseg > MAX_SEGMENTS) return this.unsegmentable();
    // Take every frame first so a full backend leaves nothing half sent.
    for (let i = 0; i < nseg; i++) {
      const segLen = hl + Math.min(mss, payload - i * mss);
      const off = be.txAcquire(segLen);
      if (off < 0) {
        for (let k = 0; k < i; k++) be.txCancel(this.offsets[k]!);
        return off === TX_BUSY ? TX_BUSY : TX_OVERSIZE;
      }
      this.offsets[i] = off;
    }
    const seq0 = view.getUint32(l4 + 4);
    const flags0 = frame[l4 + 13]!;
    const id0 = v4 ? view.getUint16(l3 + 4) : 0;
    const buf = be.txBuffer;
    for (let i = 0; i < nseg; i++) {
      const off = this.offsets[i]!;
      const chunk = Math.min(mss, payload - i * mss);
      const segLen = hl + chunk;
      buf.set(new Uint8Array(frame.buffer, 0, hl), off);
      buf.set(new Uint8Array(frame.buffer, hl + i * mss, chunk), off + hl);
      const seg = new DataView(buf.buffer, buf.byteOffset + off, segLen);
      if (v4) {
        seg.setUint16(l3 + 2, segLen - l3);
        seg.setUint16(l3 + 4, (id0 + i) & 0xffff);
        seg.setUint16(l3 + 10, 0);
        seg.setUint16(l3 + 10, ~onesComplementSum(buf, off + l3, off + l4) & 0xffff);
      } else {
        seg.setUint16(l3 + 4, segLen - l4);
      }
      seg.setUint32(l4 + 4, (seq0 + i * mss) >>> 0);
      let flags = flags0;
      if (i !== nseg - 1) flags &= ~(TCP_FIN | TCP_PSH);
      if (i !== 0) flags &= ~TCP_CWR;
      seg.setUint8(l4 + 13, flags);
      seg.setUint16(l4 + 16, 0);
      const ph = this.pseudoHeader(buf, off, l3, v4, segLen - l4);
      const sum = onesComplementSum(buf, off + l4, off + segLen, ph);
      seg.setUint16(l4 + 16, ~sum & 0xffff);
      be.txCommit(off, segLen);
      this.counters.txFrames++;
      this.counters.txBytes += segLen;
    }
    this.counters.txSegmented++;
    return 0;
  }

  /** Ones' complement sum of the TCP pseudo-header (RFC 793 / RFC 8200 §8.1). */
  private pseudoHeader(buf: Uint8Array, off: number, l3: number, v4: boolean, tcpLen: number): number {
    const p = this.pseudo;
    if (v4) {
      p.set(new Uint8Array(buf.buffer, buf.byteOffset + off + l3 + 12, 8), 0);
      this.pseudoView.setUint16(8, PROTO_TCP);
      this.pseudoView.setUint16(10, tcpLen);
      return onesComplementSum(p, 0, 12);
    }
    p.set(new Uint8Array(buf.buffer, buf.byteOffset + off + l3 + 8, 32), 0);
    this.pseudoView.setUint32(32, tcpLen);
    this.pseudoView.setUint32(36, PROTO_TCP);
    return onesComplementSum(p, 0, 40);
  }

  /** A GSO frame this path cannot cut: dropped and counted (the caller returns the chain). */
  private unsegmentable(): number {
    this.counters.txDropUnsegmentable++;
    return 0;
  }
}
