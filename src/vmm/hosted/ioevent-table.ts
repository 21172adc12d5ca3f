// The hosted accelerator's ioeventfds: a table in shared memory that each
// vCPU relay thread consults before it hands an MMIO write to the platform
// thread, so a queue notification signals its I/O thread straight from the
// relay, as KVM's ioeventfd signals it from the kernel (KVM API,
// KVM_IOEVENTFD). The platform thread edits the table; entries are
// published with Atomics, the valid mark last, so a relay reading while an
// entry changes sees either the old or the new one.
const ENTRY_WORDS = 5; // valid, addr lo, addr hi, len, fd
/** One per virtqueue of every device: 8 queue pairs and a control queue take 17. */
export const IOEVENT_ENTRIES = 64;

export class IoeventTable {
  readonly buffer: SharedArrayBuffer;
  private readonly words: Int32Array;

  constructor(buffer?: SharedArrayBuffer) {
    this.buffer = buffer ?? new SharedArrayBuffer(IOEVENT_ENTRIES * ENTRY_WORDS * 4);
    if (this.buffer.byteLength !== IOEVENT_ENTRIES * ENTRY_WORDS * 4) throw new RangeError('ioeventfd table: wrong buffer size');
    this.words = new Int32Array(this.buffer);
  }

  /** Adds a write of `len` bytes (0: any size) at `addr` signalling `fd`; the same address and size twice is refused (as KVM: EEXIST). */
  add(addr: number, len: number, fd: number): void {
    if (this.indexOf(addr, len) >= 0) throw new Error(`ioeventfd at 0x${addr.toString(16)} (${len} bytes) already assigned`);
    const w = this.words;
    for (let e = 0; e < IOEVENT_ENTRIES; e++) {
      const o = e * ENTRY_WORDS;
      if (Atomics.load(w, o) !== 0) continue;
      Atomics.store(w, o + 1, addr % 0x1_0000_0000 | 0);
      Atomics.store(w, o + 2, Math.floor(addr / 0x1_0000_0000));
      Atomics.store(w, o + 3, len);
      Atomics.store(w, o + 4, fd);
      Atomics.store(w, o, 1);
      return;
    }
    throw new Error(`ioeventfd table full (${IOEVENT_ENTRIES} entries)`);
  }

  /** Removes the entry `add` made for this address, size and fd; false if there is none. */
  remove(addr: number, len: number, fd: number): boolean {
    const e = this.indexOf(addr, len);
    if (e < 0 || Atomics.load(this.words, e * ENTRY_WORDS + 4) !== fd) return false;
    Atomics.store(this.words, e * ENTRY_WORDS, 0);
    return true;
  }

  /** The eventfd a write of `len` bytes at `addr` signals, or -1 (the write exits as usual). */
  find(addr: number, len: number): number {
    const e = this.scan(addr, len, false);
    return e < 0 ? -1 : this.words[e * ENTRY_WORDS + 4]!;
  }

  private indexOf(addr: number, len: number): number {
    return this.scan(addr, len, true);
  }

  /** The entry for this address and size (exact: the size assigned; else also an any-size entry), or -1. */
  private scan(addr: number, len: number, exact: boolean): number {
    const w = this.words;
    const lo = addr % 0x1_0000_0000 | 0;
    const hi = Math.floor(addr / 0x1_0000_0000);
    for (let e = 0; e < IOEVENT_ENTRIES; e++) {
      const o = e * ENTRY_WORDS;
      if (Atomics.load(w, o) === 0 || w[o + 1] !== lo || w[o + 2] !== hi) continue;
      const l = w[o + 3]!;
      if (l === len || (!exact && l === 0)) return e;
    }
    return -1;
  }
}
