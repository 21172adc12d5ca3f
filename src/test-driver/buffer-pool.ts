// Fixed-size buffers in guest RAM for one queue, handed out and given back
// by slot number. Larger requests get one-off memory that is never reused
// (tests send only a few such frames; RAM is sized for it).
import type { GuestRam } from './guest-ram';

export class BufferPool {
  private base = -1;
  private readonly free: number[] = [];

  constructor(
    private readonly ram: GuestRam,
    readonly slots: number,
    readonly slotSize: number,
  ) {}

  /** A buffer of at least `len` bytes: [slot, gpa]; slot -1 for one-off memory; undefined when the pool is empty. */
  take(len: number): [number, number] | undefined {
    if (len > this.slotSize) return [-1, this.ram.alloc(len, 64)];
    if (this.base < 0) {
      this.base = this.ram.alloc(this.slots * this.slotSize, 64);
      for (let i = this.slots - 1; i >= 0; i--) this.free.push(i);
    }
    const slot = this.free.pop();
    return slot === undefined ? undefined : [slot, this.base + slot * this.slotSize];
  }

  give(slot: number): void {
    if (slot >= 0) this.free.push(slot);
  }
}

/** Splits `total` bytes into `n` pieces (at most `total`, at least 1), the last taking the remainder. */
export function splitLengths(total: number, n: number): number[] {
  const k = Math.max(1, Math.min(n, total));
  const each = Math.floor(total / k);
  const out = new Array<number>(k).fill(each);
  out[k - 1] = total - each * (k - 1);
  return out;
}
