// UMEM frames that are in no ring: a LIFO stack of frame addresses (the most
// recently used frame is the most likely to be in cache).
export class FramePool {
  private readonly stack: Uint32Array;
  private top = 0;

  constructor(capacity: number) {
    this.stack = new Uint32Array(capacity);
  }

  get count(): number {
    return this.top;
  }

  push(addr: number): void {
    // More pushes than frames would mean a frame handed back twice: a bug we want to see.
    if (this.top === this.stack.length) throw new Error('frame pool overflow: a frame was returned twice');
    this.stack[this.top++] = addr;
  }

  /**
   * Pushes the addresses of `n` ring entries from free-running slot `first` (ring index mask `ringMask`) of
   * `words`, entries of `stride` u32 words starting with the address's low word, each with `addrMask` applied:
   * frames back from the Completion ring (stride 2) or the Rx ring (4).
   */
  pushFromRing(words: Uint32Array, first: number, ringMask: number, n: number, addrMask: number, stride: number): void {
    const stack = this.stack;
    let top = this.top;
    if (n > stack.length - top) throw new Error('frame pool overflow: a frame was returned twice');
    for (let i = 0; i < n; i++) stack[top++] = words[((first + i) & ringMask) * stride]! & addrMask;
    this.top = top;
  }

  /** `n` frame addresses into `out[0..n)`; the caller checks `count` first. */
  popInto(out: Float64Array, n: number): void {
    const stack = this.stack;
    let top = this.top;
    for (let i = 0; i < n; i++) out[i] = stack[--top]!;
    this.top = top;
  }

  /** A frame address; the caller checks `count` first. */
  pop(): number {
    return this.stack[--this.top]!;
  }
}
