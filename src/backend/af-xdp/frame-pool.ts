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

  /** A frame address; the caller checks `count` first. */
  pop(): number {
    return this.stack[--this.top]!;
  }
}
