// Available buffers read a burst at a time (Virtqueue.peekBurst): the usual
// transmit buffer is one descriptor, header and frame together, and a burst
// of them is read and returned with one call each way instead of a
// DescriptorChain per buffer. Same guarantees as a chain: every range has
// been checked to lie inside one guest memory region, and the device uses
// only this snapshot, never the descriptors again.

export class BufferBurst {
  /** Buffers the last peek found. */
  count = 0;
  /** Head descriptor index (the id returned in the used element). */
  readonly head: Uint16Array;
  /** Guest memory region of each buffer (`memory.regionBytes(region[i])`), and its byte offset there. */
  readonly region: Int32Array;
  readonly offset: Float64Array;
  readonly len: Uint32Array;
  /** 1 when the buffer is device-writable. */
  readonly writable: Uint8Array;
  /** Set by the device for each buffer it wrote into: the used element's length (0 for one it only read). */
  readonly written: Uint32Array;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`burst capacity ${capacity} is not a positive integer`);
    this.head = new Uint16Array(capacity);
    this.region = new Int32Array(capacity);
    this.offset = new Float64Array(capacity);
    this.len = new Uint32Array(capacity);
    this.writable = new Uint8Array(capacity);
    this.written = new Uint32Array(capacity);
  }
}
