// Copies between a validated descriptor chain and a flat frame buffer. The
// chain's ranges were checked against guest memory when it was popped
// (DescriptorChain), so these copies cannot leave it.
import type { GuestMemory } from '../../memory/guest-memory';
import type { DescriptorChain } from '../queue';

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
    dst.set(new Uint8Array(region.buffer, region.byteOffset + chain.offset[i]! + skip, take), dstOff + done);
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
    region.set(new Uint8Array(src.buffer, src.byteOffset + srcOff + done, take), chain.offset[i]! + skip);
    done += take;
    skip = 0;
  }
  return done;
}
