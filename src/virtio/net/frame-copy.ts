// Copies between a validated descriptor chain and a flat frame buffer. The
// chain's ranges were checked against guest memory when it was popped
// (DescriptorChain), so these copies cannot leave it.
import type { GuestMemory } from '../../memory/guest-memory';
import type { DescriptorChain } from '../queue';
import { addSums, onesComplementSum, swap16 } from './checksum';

/** Below this many bytes a byte loop beats building a view for TypedArray.set (and allocates nothing). */
const SMALL_COPY = 256;

/**
 * Ones' complement sum (folded, big-endian, RFC 1071) of the chain's readable bytes [skip, skip+len) as one
 * stream, read in place: no copy, no allocation. A range that starts at an odd position of the stream
 * contributes its byte-swapped sum.
 */
export function sumChain(mem: GuestMemory, chain: DescriptorChain, skip: number, len: number): number {
  let sum = 0;
  let pos = 0;
  for (let i = 0; i < chain.readableCount && pos < len; i++) {
    const l = chain.len[i]!;
    if (skip >= l) {
      skip -= l;
      continue;
    }
    let take = l - skip;
    if (take > len - pos) take = len - pos;
    const o = chain.offset[i]! + skip;
    const s = onesComplementSum(mem.regionBytes(chain.region[i]!), o, o + take);
    sum = addSums(sum, (pos & 1) === 0 ? s : swap16(s));
    pos += take;
    skip = 0;
  }
  return sum;
}

/**
 * Copies `len` bytes of the chain's readable part, starting `skip` bytes in,
 * to dst[dstOff...]. Returns the bytes copied.
 */
export function gatherFromChain(mem: GuestMemory, chain: DescriptorChain, skip: number, dst: Uint8Array, dstOff: number, len: number): number {
  let done = 0;
  for (let i = 0; i < chain.readableCount && done < len; i++) {
    const l = chain.len[i]!;
    if (skip >= l) {
      skip -= l;
      continue;
    }
    let take = l - skip;
    if (take > len - done) take = len - done;
    const region = mem.regionBytes(chain.region[i]!);
    const from = chain.offset[i]! + skip;
    const to = dstOff + done;
    if (take < SMALL_COPY) for (let k = 0; k < take; k++) dst[to + k] = region[from + k]!;
    else dst.set(region.subarray(from, from + take), to);
    done += take;
    skip = 0;
  }
  return done;
}

/**
 * Copies src[srcOff, srcOff+len) into the chain's writable part starting
 * `skip` bytes in. Returns the bytes copied (less than len if the chain is too short).
 */
export function scatterToChain(mem: GuestMemory, chain: DescriptorChain, skip: number, src: Uint8Array, srcOff: number, len: number): number {
  let done = 0;
  for (let i = chain.readableCount; i < chain.count && done < len; i++) {
    const l = chain.len[i]!;
    if (skip >= l) {
      skip -= l;
      continue;
    }
    let take = l - skip;
    if (take > len - done) take = len - done;
    const region = mem.regionBytes(chain.region[i]!);
    const from = srcOff + done;
    const to = chain.offset[i]! + skip;
    if (take < SMALL_COPY) for (let k = 0; k < take; k++) region[to + k] = src[from + k]!;
    else region.set(src.subarray(from, from + take), to);
    done += take;
    skip = 0;
  }
  return done;
}
