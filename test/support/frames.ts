// Test frames: Ethernet with the local-experimental ethertype 0x88b5, a
// sequence number and a pattern derived from it, so that any corruption,
// loss, duplication or stray frame from the host stack is visible.
export const TEST_ETHERTYPE = 0x88b5;

export function makeFrame(seq: number, length: number, tag = 0): Uint8Array {
  if (length < 20) throw new RangeError('test frames are at least 20 bytes');
  const f = new Uint8Array(length);
  f.set([0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01], 0);
  f[12] = TEST_ETHERTYPE >> 8;
  f[13] = TEST_ETHERTYPE & 0xff;
  const dv = new DataView(f.buffer);
  dv.setUint32(14, seq);
  f[18] = tag;
  for (let i = 19; i < length; i++) f[i] = (seq * 7 + i) & 0xff;
  return f;
}

/** The sequence number of a test frame, or -1 for anything else (checks the whole pattern). */
export function frameSeq(f: Uint8Array): number {
  if (f.length < 20 || f[12] !== TEST_ETHERTYPE >> 8 || f[13] !== (TEST_ETHERTYPE & 0xff)) return -1;
  const seq = new DataView(f.buffer, f.byteOffset, f.byteLength).getUint32(14);
  for (let i = 19; i < f.length; i++) if (f[i] !== ((seq * 7 + i) & 0xff)) return -2;
  return seq;
}

export function frameTag(f: Uint8Array): number {
  return f[18]!;
}
