// The Internet checksum (RFC 1071) over bytes of a Uint8Array, for the
// software checksum offload. Summing little-endian 16-bit words and swapping
// the folded result gives the same checksum as big-endian words (RFC 1071
// §2(B), byte-order independence), which lets even-aligned data be summed
// through a Uint16Array view two bytes at a time.

// u16 views of the last two buffers summed (the backend's Tx frames, a TSO
// scratch frame, guest memory): built once per buffer, not once per call.
let wordsA: Uint16Array | undefined;
let wordsB: Uint16Array | undefined;

function wordsOf(buffer: ArrayBufferLike): Uint16Array {
  if (wordsA?.buffer === buffer) return wordsA;
  if (wordsB?.buffer === buffer) {
    const w = wordsB;
    wordsB = wordsA;
    wordsA = w;
    return w;
  }
  wordsB = wordsA;
  wordsA = new Uint16Array(buffer, 0, buffer.byteLength >> 1);
  return wordsA;
}

/** Ones' complement sum (not yet complemented) of buf[start, end), folded to 16 bits, as a big-endian value. */
export function onesComplementSum(buf: Uint8Array, start: number, end: number, initial = 0): number {
  let sum = 0;
  let i = start;
  const abs = buf.byteOffset + start;
  if ((abs & 1) === 0 && end - start >= 32) {
    const words = wordsOf(buf.buffer);
    const n = (end - start) >> 1;
    const w0 = abs >> 1;
    for (let k = w0; k < w0 + n; k++) {
      sum += words[k]!;
      if (sum > 0x3fffffff) sum = (sum & 0xffff) + (sum >>> 16);
    }
    i = start + n * 2;
    sum = (sum & 0xffff) + (sum >>> 16);
    sum = (sum & 0xffff) + (sum >>> 16);
    sum = ((sum & 0xff) << 8) | (sum >>> 8); // little-endian word sum -> big-endian
  }
  for (; i + 1 < end; i += 2) sum += (buf[i]! << 8) | buf[i + 1]!;
  if (i < end) sum += buf[i]! << 8;
  sum += initial;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

/** Fills a partial checksum as NEEDS_CSUM asks (§5.1.6.2): sum from csumStart to the end, stored complemented at csumStart + csumOffset. */
export function completeChecksum(frame: Uint8Array, frameOff: number, frameLen: number, csumStart: number, csumOffset: number): void {
  const sum = onesComplementSum(frame, frameOff + csumStart, frameOff + frameLen);
  let csum = ~sum & 0xffff;
  // A UDP checksum of 0 means "none"; RFC 768 transmits it as all ones.
  if (csum === 0) csum = 0xffff;
  const at = frameOff + csumStart + csumOffset;
  frame[at] = csum >> 8;
  frame[at + 1] = csum & 0xff;
}

/** Swaps the bytes of a 16-bit sum: the contribution of data that starts at an odd offset of the summed range (RFC 1071 §2(B)). */
export function swap16(sum: number): number {
  return ((sum & 0xff) << 8) | (sum >>> 8);
}

/** Adds two folded ones' complement sums. */
export function addSums(a: number, b: number): number {
  let s = a + b;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}
