// A position inside one part (device-readable or device-writable) of a
// popped DescriptorChain, read as one byte stream: the descriptor Reader /
// Writer of rust-vmm's virtio-queue, made allocation-free for the per-packet
// paths. A device keeps one cursor per walk it needs and restarts it per
// chain (`readable` / `writable`); `take` hands out (region, offset, length)
// pieces in the cursor's own fields, and the copy helpers consume pieces into
// a CopyBatch or a flat buffer. The chain's ranges were checked against guest
// memory at pop, so pieces never leave it.
import type { CopyBatch } from '../../memory/copy-batch';
import type { GuestMemory } from '../../memory/guest-memory';
import { DescriptorChain } from './descriptor-chain';

/** Below this many bytes a byte loop beats building a view for TypedArray.set (and allocates nothing). */
const SMALL_COPY = 256;
/** What a fresh cursor points at: keeps `chain` one type (no undefined) at no cost per reset. */
const NO_CHAIN = new DescriptorChain(0);

/**
 * Where batched copies go: the batch and the absolute addresses it copies between. Passed whole (not
 * its addresses) so a call that V8 does not inline carries no double to box.
 */
export interface BatchCopies {
  readonly batch: CopyBatch;
  /** Absolute address of each guest memory region's first byte. */
  readonly regionAddress: Float64Array;
  /** Absolute address of the host buffer's first byte (the backend's Tx or Rx buffer). */
  readonly hostBase: number;
}

export class ChainCursor {
  /** Region (`memory.regionBytes(region)`) of the piece the last `take` returned. */
  region = 0;
  /** Byte offset within `region` of that piece. */
  offset = 0;
  private chain: DescriptorChain = NO_CHAIN;
  /** Current buffer, and one past the last buffer of the part. */
  private i = 0;
  private end = 0;
  /** Bytes from the start of buffer `i` to the position; may run past it (a skip not yet walked). */
  private at = 0;

  // Two small resets rather than one with a flag: each is small enough for V8 to inline where it is called.

  /** Starts `skip` bytes into the chain's device-readable part (a Reader, in rust-vmm's terms). */
  readable(chain: DescriptorChain, skip: number): this {
    this.chain = chain;
    this.i = 0;
    this.end = chain.readableCount;
    this.at = skip;
    return this;
  }

  /** Starts `skip` bytes into the chain's device-writable part (a Writer). */
  writable(chain: DescriptorChain, skip: number): this {
    this.chain = chain;
    this.i = chain.readableCount;
    this.end = chain.count;
    this.at = skip;
    return this;
  }

  /** Moves `n` bytes on; the next `take` walks over them (past the end of the part, the part is over). */
  skip(n: number): this {
    this.at += n;
    return this;
  }

  /**
   * The next piece, at most `max` (>= 0) bytes and within one buffer, in `region` and `offset`; moves
   * past it. Returns its length: 0 at the end of the part (or for max 0).
   */
  take(max: number): number {
    // The walk in locals, the state stored once: this runs per packet.
    const { chain, end } = this;
    let i = this.i;
    let at = this.at;
    for (; i < end; i++) {
      const len = chain.len[i]!;
      if (at >= len) {
        at -= len;
        continue;
      }
      const n = len - at < max ? len - at : max;
      this.region = chain.region[i]!;
      this.offset = chain.offset[i]! + at;
      this.i = i;
      this.at = at + n;
      return n;
    }
    this.i = i;
    this.at = at;
    return 0;
  }

  /** Queues copies of the next `len` bytes to the host buffer at `hostOff`. Returns bytes queued. */
  gatherBatched(to: BatchCopies, hostOff: number, len: number): number {
    const { batch, regionAddress } = to;
    const ops = batch.ops;
    const dst = to.hostBase + hostOff;
    let done = 0;
    while (done < len) {
      const n = this.take(len - done);
      if (n === 0) break;
      const at = batch.slot();
      ops[at] = dst + done;
      ops[at + 1] = regionAddress[this.region]! + this.offset;
      ops[at + 2] = n;
      done += n;
    }
    return done;
  }

  /** Queues copies from the host buffer at `hostOff` into the next `len` bytes. Returns bytes queued. */
  scatterBatched(from: BatchCopies, hostOff: number, len: number): number {
    const { batch, regionAddress } = from;
    const ops = batch.ops;
    const src = from.hostBase + hostOff;
    let done = 0;
    while (done < len) {
      const n = this.take(len - done);
      if (n === 0) break;
      const at = batch.slot();
      ops[at] = regionAddress[this.region]! + this.offset;
      ops[at + 1] = src + done;
      ops[at + 2] = n;
      done += n;
    }
    return done;
  }

  /** Copies the next `len` bytes to dst[dstOff...] now. Returns bytes copied. */
  read(mem: GuestMemory, dst: Uint8Array, dstOff: number, len: number): number {
    let done = 0;
    while (done < len) {
      const n = this.take(len - done);
      if (n === 0) break;
      const region = mem.regionBytes(this.region);
      const from = this.offset;
      const to = dstOff + done;
      if (n < SMALL_COPY) for (let k = 0; k < n; k++) dst[to + k] = region[from + k]!;
      else dst.set(region.subarray(from, from + n), to);
      done += n;
    }
    return done;
  }

  /** Copies src[srcOff, srcOff+len) into the next `len` bytes now. Returns bytes copied. */
  write(mem: GuestMemory, src: Uint8Array, srcOff: number, len: number): number {
    let done = 0;
    while (done < len) {
      const n = this.take(len - done);
      if (n === 0) break;
      const region = mem.regionBytes(this.region);
      const from = srcOff + done;
      const to = this.offset;
      if (n < SMALL_COPY) for (let k = 0; k < n; k++) region[to + k] = src[from + k]!;
      else region.set(src.subarray(from, from + n), to);
      done += n;
    }
    return done;
  }
}
