// Guest buffers the kernel holds (guest RAM as the UMEM): one entry per
// buffer posted on the Tx or Fill ring, in posting order, until the kernel
// hands it back on the Completion or Rx ring. Addresses coming back are
// never trusted: an address only counts when an entry in flight holds it,
// and each entry is handed back once. The kernel mostly returns buffers in
// posting order, so the oldest entry is looked at first; otherwise (copy mode
// reusing a buffer it failed to deliver, a zero-copy driver's own order) the
// table is scanned, bounded by its capacity. Allocation-free.
export class InFlightTable {
  /** UMEM address the kernel was given for each entry. */
  readonly addr: Float64Array;
  /** The chain behind it: head id and ring slots (for the used ring). */
  readonly headId: Int32Array;
  readonly ringSlots: Int32Array;
  /** RX: where the chain's first writable buffer is (region, offset, length) and its bounce frame (-1: none). */
  readonly region: Int32Array;
  readonly offset: Float64Array;
  readonly length: Uint32Array;
  readonly bounce: Float64Array;
  private readonly live: Uint8Array;
  private readonly mask: number;
  /** Free-running: entries [oldest, next) may be live. */
  private oldest = 0;
  private next = 0;
  private liveCount = 0;

  constructor(readonly capacity: number) {
    if (capacity <= 0 || (capacity & (capacity - 1)) !== 0) throw new RangeError(`in-flight capacity ${capacity} is not a power of two`);
    this.mask = capacity - 1;
    this.addr = new Float64Array(capacity);
    this.headId = new Int32Array(capacity);
    this.ringSlots = new Int32Array(capacity);
    this.region = new Int32Array(capacity);
    this.offset = new Float64Array(capacity);
    this.length = new Uint32Array(capacity);
    this.bounce = new Float64Array(capacity).fill(-1);
    this.live = new Uint8Array(capacity);
  }

  /** Entries the kernel holds. */
  get count(): number {
    return this.liveCount;
  }

  /** Entries that can be allocated now (an old entry still held keeps the ones after it from being reused). */
  get room(): number {
    return this.capacity - (this.next - this.oldest);
  }

  /** A new entry for `addr` (the caller checked `room`): its index. */
  add(addr: number, headId: number, ringSlots: number): number {
    const i = this.next & this.mask;
    this.next++;
    this.addr[i] = addr;
    this.headId[i] = headId;
    this.ringSlots[i] = ringSlots;
    this.bounce[i] = -1;
    this.live[i] = 1;
    this.liveCount++;
    return i;
  }

  /** Index of the oldest live entry holding `addr`, or -1 (an address the kernel was never given, or given back already). */
  find(addr: number): number {
    for (let k = this.oldest; k !== this.next; k++) {
      const i = k & this.mask;
      if (this.live[i] === 1 && this.addr[i] === addr) return i;
    }
    return -1;
  }

  /** Entry `i` is being handed back: find() no longer returns it (a second return of its address is unknown). */
  claim(i: number): void {
    if (this.live[i] === 1) this.live[i] = 2;
  }

  /** Entry `i` goes back to the kernel as it was. */
  unclaim(i: number): void {
    if (this.live[i] === 2) this.live[i] = 1;
  }

  /** The kernel gave entry `i` back. */
  remove(i: number): void {
    if (this.live[i] === 0) return;
    this.live[i] = 0;
    this.liveCount--;
    while (this.oldest !== this.next && this.live[this.oldest & this.mask] === 0) this.oldest++;
  }

  /** Forgets everything (the socket that held the buffers is closed). */
  clear(): void {
    this.live.fill(0);
    this.oldest = this.next = this.liveCount = 0;
  }
}
