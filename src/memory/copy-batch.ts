// Frame copies collected per batch and done by one native call (memmove per
// entry), so the per-packet path creates no views and makes no native call.
// Callers pass absolute addresses built from `addressOf` bases plus offsets
// they have already bounds-checked; the native side re-checks every range
// against the memory registered here and refuses anything else.
import { sys } from '../native/sys';

const DEFAULT_CAPACITY = 512;

export class CopyBatch {
  /** The queued copies as (dst, src, len) triples; `slot` hands out the next. */
  readonly ops: Float64Array;
  /** Entries the batch holds before it runs itself. */
  readonly capacity: number;
  private n = 0;

  constructor(capacity = DEFAULT_CAPACITY) {
    this.capacity = capacity;
    this.ops = new Float64Array(capacity * 3);
  }

  /** Absolute address of bytes[0]; registers the underlying buffer for batched copies (undo with `release`). */
  static addressOf(bytes: Uint8Array): number {
    return sys.copyRegister(bytes.buffer as ArrayBuffer) + bytes.byteOffset;
  }

  /** Undoes one addressOf registration of the buffer under `bytes`. */
  static release(bytes: Uint8Array): void {
    sys.copyUnregister(bytes.buffer as ArrayBuffer);
  }

  get pending(): number {
    return this.n;
  }

  /**
   * Index in `ops` of a new entry for the caller to fill with (dst, src, len > 0), running the batch
   * first when it is full. For per-packet callers: an address passed to a call V8 does not inline is
   * boxed (an allocation per packet), an address stored into `ops` is not.
   */
  slot(): number {
    if (this.n === this.capacity) this.flush();
    return 3 * this.n++;
  }

  /**
   * Index in `ops` of `count` consecutive new entries (count <= capacity), running the batch first when they
   * do not fit: a burst fills its copies without a slot() per frame.
   */
  reserve(count: number): number {
    if (count > this.capacity - this.n) this.flush();
    const at = 3 * this.n;
    this.n += count;
    return at;
  }

  /** Queues a copy of `len` bytes from address `src` to address `dst`. */
  add(dst: number, src: number, len: number): void {
    if (len <= 0) return;
    const at = this.slot();
    this.ops[at] = dst;
    this.ops[at + 1] = src;
    this.ops[at + 2] = len;
  }

  /** Performs every queued copy. Must run before the copied bytes are published or their source is released. */
  flush(): void {
    if (this.n === 0) return;
    const n = this.n;
    this.n = 0;
    sys.copyBatch(this.ops, n);
  }
}
