// A 64-byte (or larger) UDP/IPv4 frame like testpmd's txonly sends.
export function udpFrame(size: number, srcMac = [2, 0, 0, 0, 0, 1], dstMac = [2, 0, 0, 0, 0, 2]): Uint8Array {
  if (size < 60) throw new RangeError('frames are at least 60 bytes');
  const f = new Uint8Array(size);
  const dv = new DataView(f.buffer);
  f.set(dstMac, 0);
  f.set(srcMac, 6);
  dv.setUint16(12, 0x0800);
  // IPv4 header (20 bytes): 198.18.0.1 -> 198.18.0.2 (benchmarking range, RFC 2544).
  const ipLen = size - 14;
  f[14] = 0x45;
  dv.setUint16(16, ipLen);
  f[22] = 64;
  f[23] = 17;
  f.set([198, 18, 0, 1], 26);
  f.set([198, 18, 0, 2], 30);
  let sum = 0;
  for (let i = 14; i < 34; i += 2) sum += dv.getUint16(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >> 16);
  dv.setUint16(24, ~sum & 0xffff);
  // UDP header: port 9 (discard), no checksum.
  dv.setUint16(34, 1024);
  dv.setUint16(36, 9);
  dv.setUint16(38, ipLen - 20);
  return f;
}
