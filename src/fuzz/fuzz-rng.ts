// Deterministic pseudo-random numbers for fuzzing (mulberry32): the same seed
// gives the same cases on every machine. Never Math.random.

/** murmur3's 32-bit finaliser: spreads nearby seeds far apart. */
export function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x85eb_ca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2_ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

/** The seed of case `index` of a run seeded with `seed` (any safe integer). */
export function caseSeed(seed: number, index: number): number {
  const folded = (seed % 0x1_0000_0000) ^ Math.floor(seed / 0x1_0000_0000);
  return mix32((folded ^ mix32(index + 0x9e37_79b9)) >>> 0);
}

export class FuzzRng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** Uniform u32. */
  u32(): number {
    let t = (this.state = (this.state + 0x6d2b_79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** Uniform integer in [0, n) for 1 <= n <= 2^32. */
  int(n: number): number {
    return Math.floor((this.u32() / 0x1_0000_0000) * n);
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return this.u32() < p * 0x1_0000_0000;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }
}
