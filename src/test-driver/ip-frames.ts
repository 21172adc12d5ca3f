// IPv4/IPv6 TCP and UDP frames as a guest's stack would hand them to its
// virtio-net driver, for the offload tests: the payload a counting pattern,
// and for NEEDS_CSUM the transport checksum field holding the folded
// pseudo-header sum (Linux's CHECKSUM_PARTIAL convention, which the device
// completes per §5.1.6.2). Test code: it allocates.

export interface IpFrameOptions {
  readonly v6?: boolean;
  readonly proto: 'tcp' | 'udp';
  /** Payload length (a pattern is generated) or the payload itself. */
  readonly payload: number | Uint8Array;
  /** 802.1Q tag in front of the IP header. */
  readonly vlan?: number;
  readonly srcPort?: number;
  readonly dstPort?: number;
  /** TCP sequence number, flags (FIN 0x01, SYN 0x02, PSH 0x08, ACK 0x10, CWR 0x80) and window. */
  readonly seq?: number;
  readonly tcpFlags?: number;
  /** IPv4 identification. */
  readonly ipId?: number;
  /** Fill the transport checksum field with the pseudo-header sum (for NEEDS_CSUM); otherwise 0. */
  readonly partialChecksum?: boolean;
}

export interface IpFrame {
  readonly frame: Uint8Array;
  /** Offsets of the IP header and of the TCP/UDP header, and the headers' total length. */
  readonly l3: number;
  readonly l4: number;
  readonly hdrLen: number;
  /** Where the transport checksum is, from l4 (§5.1.6.2 csum_offset). */
  readonly csumOffset: number;
}

export const PROTO_TCP = 6;
export const PROTO_UDP = 17;

export function patternPayload(len: number, seed = 0): Uint8Array {
  const p = new Uint8Array(len);
  for (let i = 0; i < len; i++) p[i] = (i * 31 + seed * 7 + (i >> 8)) & 0xff;
  return p;
}

/** Folded ones' complement sum of big-endian 16-bit words (not complemented). */
export function sum16(bytes: Uint8Array, initial = 0): number {
  let s = initial;
  for (let i = 0; i + 1 < bytes.length; i += 2) s += (bytes[i]! << 8) | bytes[i + 1]!;
  if (bytes.length & 1) s += bytes[bytes.length - 1]! << 8;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

export function ipFrame(o: IpFrameOptions): IpFrame {
  const payload = typeof o.payload === 'number' ? patternPayload(o.payload) : o.payload;
  const tcp = o.proto === 'tcp';
  const l4Hdr = tcp ? 20 : 8;
  const l3 = o.vlan !== undefined ? 18 : 14;
  const ipHdr = o.v6 ? 40 : 20;
  const l4 = l3 + ipHdr;
  const hdrLen = l4 + l4Hdr;
  const f = new Uint8Array(hdrLen + payload.length);
  const dv = new DataView(f.buffer);
  f.set([0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01], 0);
  if (o.vlan !== undefined) {
    dv.setUint16(12, 0x8100);
    dv.setUint16(14, o.vlan & 0x0fff);
  }
  dv.setUint16(l3 - 2, o.v6 ? 0x86dd : 0x0800);
  const l4Len = l4Hdr + payload.length;
  const proto = tcp ? PROTO_TCP : PROTO_UDP;
  if (o.v6) {
    dv.setUint32(l3, 0x6000_0000);
    dv.setUint16(l3 + 4, l4Len);
    f[l3 + 6] = proto;
    f[l3 + 7] = 64;
    f.set([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], l3 + 8);
    f.set([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2], l3 + 24);
  } else {
    f[l3] = 0x45;
    dv.setUint16(l3 + 2, ipHdr + l4Len);
    dv.setUint16(l3 + 4, o.ipId ?? 0x1234);
    dv.setUint16(l3 + 6, 0x4000); // DF
    f[l3 + 8] = 64;
    f[l3 + 9] = proto;
    f.set([198, 18, 0, 1], l3 + 12);
    f.set([198, 18, 0, 2], l3 + 16);
    dv.setUint16(l3 + 10, ~sum16(f.subarray(l3, l4)) & 0xffff);
  }
  dv.setUint16(l4, o.srcPort ?? 40000);
  dv.setUint16(l4 + 2, o.dstPort ?? 5201);
  if (tcp) {
    dv.setUint32(l4 + 4, o.seq ?? 1000);
    dv.setUint32(l4 + 8, 0x1111);
    f[l4 + 12] = 5 << 4;
    f[l4 + 13] = o.tcpFlags ?? 0x10;
    dv.setUint16(l4 + 14, 0xffff);
  } else {
    dv.setUint16(l4 + 4, l4Len);
  }
  f.set(payload, hdrLen);
  const csumOffset = tcp ? 16 : 6;
  if (o.partialChecksum) dv.setUint16(l4 + csumOffset, pseudoHeaderSum(f, l3, !!o.v6, proto, l4Len));
  return { frame: f, l3, l4, hdrLen, csumOffset };
}

/** The folded pseudo-header sum (RFC 768 / RFC 793; RFC 8200 §8.1 for IPv6). */
export function pseudoHeaderSum(frame: Uint8Array, l3: number, v6: boolean, proto: number, l4Len: number): number {
  const addrs = v6 ? frame.subarray(l3 + 8, l3 + 40) : frame.subarray(l3 + 12, l3 + 20);
  return sum16(Uint8Array.of(0, proto, (l4Len >> 8) & 0xff, l4Len & 0xff), sum16(addrs));
}
