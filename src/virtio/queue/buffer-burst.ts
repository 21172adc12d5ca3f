// Available buffers read a burst at a time (Virtqueue.peekBurst): the usual
// transmit buffer is one descriptor, header and frame together, and a burst
// of them is read and returned with one call each way instead of a
// DescriptorChain per buffer. Same guarantees as a chain: every range has
// been checked to lie inside one guest memory region, and the device uses
// only this snapshot, never the descriptors again.

/** Fields of one buffer in BufferBurst.words (u32 each, BURST_STRIDE per buffer). */
export const BURST_HEAD = 0; // head descriptor index: the id returned in the used element
export const BURST_LEN = 1;
export const BURST_REGION = 2; // guest memory region (`memory.regionBytes`) holding the buffer
export const BURST_WRITABLE = 3; // 1: device-writable
export const BURST_STRIDE = 4;

export class BufferBurst {
  /** Buffers the last peek found. */
  count = 0;
  /** BURST_STRIDE u32 fields per buffer: one array, so a burst's loop touches few. */
  readonly words: Uint32Array;
  /** Byte offset of each buffer in its region (may pass 2^32). */
  readonly offset: Float64Array;
  /** Set by the device for each buffer it wrote into: the used element's length (0 for one it only read). */
  readonly written: Uint32Array;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`burst capacity ${capacity} is not a positive integer`);
    this.words = new Uint32Array(BURST_STRIDE * capacity);
    this.offset = new Float64Array(capacity);
    this.written = new Uint32Array(capacity);
  }
}
