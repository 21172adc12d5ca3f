// §5.1.6 struct virtio_net_hdr (12 bytes: VERSION_1 always has num_buffers)
// as plain fields, and its little-endian encoding.
import { NetHdr } from 'virtio-spec-types';

export interface NetHeader {
  /** NetHdrFlags: NEEDS_CSUM, DATA_VALID, RSC_INFO. */
  flags: number;
  /** NetGsoType (with the ECN bit). */
  gsoType: number;
  hdrLen: number;
  gsoSize: number;
  csumStart: number;
  csumOffset: number;
  numBuffers: number;
}

export const NET_HDR_SIZE = NetHdr.SIZE;

export function netHeader(h: Partial<NetHeader> = {}): NetHeader {
  return {
    flags: h.flags ?? 0,
    gsoType: h.gsoType ?? 0,
    hdrLen: h.hdrLen ?? 0,
    gsoSize: h.gsoSize ?? 0,
    csumStart: h.csumStart ?? 0,
    csumOffset: h.csumOffset ?? 0,
    numBuffers: h.numBuffers ?? 0,
  };
}

export function writeNetHeader(dst: Uint8Array, at: number, h: Partial<NetHeader>): void {
  const v = new DataView(dst.buffer, dst.byteOffset + at, NetHdr.SIZE);
  v.setUint8(NetHdr.FLAGS, h.flags ?? 0);
  v.setUint8(NetHdr.GSO_TYPE, h.gsoType ?? 0);
  v.setUint16(NetHdr.HDR_LEN, h.hdrLen ?? 0, true);
  v.setUint16(NetHdr.GSO_SIZE, h.gsoSize ?? 0, true);
  v.setUint16(NetHdr.CSUM_START, h.csumStart ?? 0, true);
  v.setUint16(NetHdr.CSUM_OFFSET, h.csumOffset ?? 0, true);
  v.setUint16(NetHdr.NUM_BUFFERS, h.numBuffers ?? 0, true);
}

export function readNetHeader(src: Uint8Array, at = 0): NetHeader {
  const v = new DataView(src.buffer, src.byteOffset + at, NetHdr.SIZE);
  return {
    flags: v.getUint8(NetHdr.FLAGS),
    gsoType: v.getUint8(NetHdr.GSO_TYPE),
    hdrLen: v.getUint16(NetHdr.HDR_LEN, true),
    gsoSize: v.getUint16(NetHdr.GSO_SIZE, true),
    csumStart: v.getUint16(NetHdr.CSUM_START, true),
    csumOffset: v.getUint16(NetHdr.CSUM_OFFSET, true),
    numBuffers: v.getUint16(NetHdr.NUM_BUFFERS, true),
  };
}
