// Copies and sums between a validated descriptor chain and flat buffers, for
// the paths that need them once per chain (headers, control commands,
// checksums); the walk itself is ChainCursor's. The chain's ranges were
// checked against guest memory when it was popped (DescriptorChain), so
// these cannot leave it.
import type { GuestMemory } from '../../memory/guest-memory';
import { ChainCursor, type DescriptorChain } from '../queue';
import { addSums, onesComplementSum, swap16 } from './checksum';

/** One cursor for the one-shot helpers below: each finishes its walk before returning, so they can share it. */
const cursor = new ChainCursor();

/**
 * Ones' complement sum (folded, big-endian, RFC 1071) of the next `len` bytes at `cur` as one stream,
 * read in place: no copy, no allocation. A piece that starts at an odd position of the stream
 * contributes its byte-swapped sum.
 */
export function sumAt(mem: GuestMemory, cur: ChainCursor, len: number): number {
  let sum = 0;
  let pos = 0;
  while (pos < len) {
    const n = cur.take(len - pos);
    if (n === 0) break;
    const o = cur.offset;
    const s = onesComplementSum(mem.regionBytes(cur.region), o, o + n);
    sum = addSums(sum, (pos & 1) === 0 ? s : swap16(s));
    pos += n;
  }
  return sum;
}

/** sumAt over the chain's readable bytes [skip, skip+len). */
export function sumChain(mem: GuestMemory, chain: DescriptorChain, skip: number, len: number): number {
  return sumAt(mem, cursor.readable(chain, skip), len);
}

/**
 * Copies `len` bytes of the chain's readable part, starting `skip` bytes in,
 * to dst[dstOff...]. Returns the bytes copied.
 */
export function gatherFromChain(mem: GuestMemory, chain: DescriptorChain, skip: number, dst: Uint8Array, dstOff: number, len: number): number {
  return cursor.readable(chain, skip).read(mem, dst, dstOff, len);
}

/**
 * Copies src[srcOff, srcOff+len) into the chain's writable part starting
 * `skip` bytes in. Returns the bytes copied (less than len if the chain is too short).
 */
export function scatterToChain(mem: GuestMemory, chain: DescriptorChain, skip: number, src: Uint8Array, srcOff: number, len: number): number {
  return cursor.writable(chain, skip).write(mem, src, srcOff, len);
}
