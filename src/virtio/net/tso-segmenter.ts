// Software TCP segmentation offload (VIRTIO_NET_F_HOST_TSO4/6, §5.1.6.2):
// the guest hands one large TCP segment with gso_size = MSS; AF_XDP sends
// only wire-size frames, so the device cuts it into MSS-payload segments,
// each with its own IP length/id/checksum and TCP sequence number, flags and
// checksum (computed from scratch: the guest's partial sum is not reused).
// Only the headers are gathered out of the chain (once, into a small
// scratch); each segment's payload goes from guest memory straight into its
// Tx frame through the device's copy batch, and its checksum is summed in
// guest memory: no frame-sized copy outside the batch, no view per segment.
// A segment larger than one backend buffer (MTU 9000 on a multi-buffer
// backend) has its headers in the first buffer and its payload over the
// rest (TxFrameLayout); with VIRTIO_NET_F_MTU, a segment over it is dropped.
import { NetHdr } from 'virtio-spec-types';
import type { GuestMemory } from '../../memory/guest-memory';
import { TX_BUSY, TX_OVERSIZE, type NetBackendQueue } from '../../backend/net-backend';
import { type BatchCopies, ChainCursor, type DescriptorChain } from '../queue';
import { addSums, onesComplementSum } from './checksum';
import { gatherFromChain, sumAt } from './frame-copy';
import type { NetQueueCounters } from './net-counters';
import type { TxFrameLayout } from './tx-frame-layout';

const MAX_GSO_FRAME = 65536 + 256;
const MAX_SEGMENTS = 512;
/** Ethernet + VLAN tag + IPv4 with options (60) or IPv6 (40) + TCP with options (60). */
const MAX_HEADERS = 18 + 60 + 60;
const ETHERTYPE_IPV4 = 0x0800;
const ETHERTYPE_IPV6 = 0x86dd;
const ETHERTYPE_VLAN = 0x8100;
const PROTO_TCP = 6;
const TCP_FIN = 0x01;
const TCP_PSH = 0x08;
const TCP_CWR = 0x80;
// Module constants: the package's exports are getters, too slow per packet.
const HDR_SIZE = NetHdr.SIZE;
const HDR_GSO_SIZE = NetHdr.GSO_SIZE;

export class TsoSegmenter {
  private readonly hdr = new Uint8Array(MAX_HEADERS);
  private readonly view = new DataView(this.hdr.buffer);
  private readonly offsets = new Float64Array(MAX_SEGMENTS);
  /** The payload, walked front to back once for the copies and once for the sums (segments are consecutive). */
  private readonly copyCursor = new ChainCursor();
  private readonly sumCursor = new ChainCursor();
  /** The backend's Tx buffer as a DataView, made once (a view per segment was an allocation per segment). */
  private readonly tx: DataView;

  constructor(
    private readonly be: NetBackendQueue,
    private readonly counters: NetQueueCounters,
    /** The Tx path's: guest memory to the backend's Tx buffer. */
    private readonly copies: BatchCopies,
    /** The Tx path's: where a segment's bytes go when it spans several backend buffers. */
    private readonly layout: TxFrameLayout,
    /** The negotiated MTU (MAX_SAFE_INTEGER: none): a segment's IP packet may not exceed it (§5.1.4.2). */
    private readonly mtu: number,
  ) {
    const b = be.txBuffer;
    this.tx = new DataView(b.buffer, b.byteOffset, b.byteLength);
  }

  /**
   * Segments and queues the chain's frame. Returns 0 (sent, or dropped and
   * counted as txDropUnsegmentable), TX_BUSY, or TX_OVERSIZE (larger than any
   * GSO frame, or a segment the backend refused).
   */
  send(mem: GuestMemory, chain: DescriptorChain, hdr: Uint8Array, frameLen: number): number {
    const { view, be, tx } = this;
    const h = this.hdr;
    if (frameLen > MAX_GSO_FRAME) return TX_OVERSIZE;
    const mss = hdr[HDR_GSO_SIZE]! | (hdr[HDR_GSO_SIZE + 1]! << 8);
    // Parse what we rewrite; anything unexpected is a frame we cannot segment.
    const got = gatherFromChain(mem, chain, HDR_SIZE, h, 0, frameLen < MAX_HEADERS ? frameLen : MAX_HEADERS);
    if (got < 14) return this.unsegmentable();
    let l3 = 14;
    let ethertype = view.getUint16(12);
    if (ethertype === ETHERTYPE_VLAN) {
      if (got < 18) return this.unsegmentable();
      ethertype = view.getUint16(16);
      l3 = 18;
    }
    let l4: number;
    const v4 = ethertype === ETHERTYPE_IPV4;
    if (v4) {
      if (frameLen < l3 + 20 || h[l3 + 9] !== PROTO_TCP) return this.unsegmentable();
      l4 = l3 + (h[l3]! & 0x0f) * 4;
    } else if (ethertype === ETHERTYPE_IPV6) {
      if (frameLen < l3 + 40 || h[l3 + 6] !== PROTO_TCP) return this.unsegmentable();
      l4 = l3 + 40;
    } else return this.unsegmentable();
    if (frameLen < l4 + 20 || l4 + 20 > got) return this.unsegmentable();
    const hl = l4 + (h[l4 + 12]! >> 4) * 4;
    if (hl > got) return this.unsegmentable();
    const payload = frameLen - hl;
    if (mss === 0 || hl > frameLen || hl + mss > be.maxFrameSize) return this.unsegmentable();
    // hl + mss: the Ethernet header (l3 bytes, a VLAN tag included) plus the largest segment's IP packet.
    if (hl + mss - l3 > this.mtu) {
      this.counters.txDropOverMtu++;
      return 0;
    }
    // The headers are written in place: they must sit in the first backend buffer of each segment.
    if (hl > this.layout.segment) return this.unsegmentable();
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
    const flags0 = h[l4 + 13]!;
    const id0 = v4 ? view.getUint16(l3 + 4) : 0;
    const buf = be.txBuffer;
    const copy = this.copyCursor.readable(chain, HDR_SIZE + hl);
    const summed = this.sumCursor.readable(chain, HDR_SIZE + hl);
    for (let i = 0; i < nseg; i++) {
      const off = this.offsets[i]!;
      const chunk = Math.min(mss, payload - i * mss);
      const segLen = hl + chunk;
      // Headers: written here (small); payload: queued in the batch, straight from guest memory.
      for (let k = 0; k < hl; k++) buf[off + k] = h[k]!;
      this.layout.gather(copy, this.copies, off, hl, chunk);
      if (v4) {
        tx.setUint16(off + l3 + 2, segLen - l3);
        tx.setUint16(off + l3 + 4, (id0 + i) & 0xffff);
        tx.setUint16(off + l3 + 10, 0);
        tx.setUint16(off + l3 + 10, ~onesComplementSum(buf, off + l3, off + l4) & 0xffff);
      } else {
        tx.setUint16(off + l3 + 4, segLen - l4);
      }
      tx.setUint32(off + l4 + 4, (seq0 + i * mss) >>> 0);
      let flags = flags0;
      if (i !== nseg - 1) flags &= ~(TCP_FIN | TCP_PSH);
      if (i !== 0) flags &= ~TCP_CWR;
      buf[off + l4 + 13] = flags;
      tx.setUint16(off + l4 + 16, 0);
      // Pseudo-header + TCP header (in the Tx frame) + payload (in guest memory; the TCP header is a
      // multiple of 4 bytes, so the payload starts at an even position of the sum).
      let sum = this.pseudoHeader(buf, off, l3, v4, segLen - l4);
      sum = onesComplementSum(buf, off + l4, off + hl, sum);
      sum = addSums(sum, sumAt(mem, summed, chunk));
      tx.setUint16(off + l4 + 16, ~sum & 0xffff);
      be.txCommit(off, segLen);
      this.counters.txFrames++;
      this.counters.txBytes += segLen;
    }
    this.counters.txSegmented++;
    return 0;
  }

  /** Ones' complement sum of the TCP pseudo-header (RFC 793 / RFC 8200 §8.1), read from the segment's IP header. */
  private pseudoHeader(buf: Uint8Array, off: number, l3: number, v4: boolean, tcpLen: number): number {
    // Addresses: 8 bytes (v4) or 32 (v6), even-aligned in the header, as 16-bit words.
    const at = off + l3 + (v4 ? 12 : 8);
    let sum = v4 ? onesComplementSum(buf, at, at + 8) : onesComplementSum(buf, at, at + 32);
    sum = addSums(sum, PROTO_TCP);
    sum = addSums(sum, tcpLen & 0xffff);
    if (!v4) sum = addSums(sum, tcpLen >>> 16);
    return sum;
  }

  /** A GSO frame this path cannot cut: dropped and counted (the caller returns the chain). */
  private unsegmentable(): number {
    this.counters.txDropUnsegmentable++;
    return 0;
  }
}
