// A well-behaved packed-ring driver (virtio 1.2 §2.8.21, §2.8.22) for tests
// and the fuzz engine: Buffer IDs, wrap counters, lists written head-last,
// indirect tables, event suppression and used-descriptor collection. Test
// code: it allocates.
import { DescFlags, EventSuppression, PackedDesc, PackedDescFlags, RingEventFlags, type RingEventFlag } from 'virtio-spec-types';
import { packedNeedEvent } from '../virtio/queue/event-idx';
import { type DriverBuffer, type GuestAccess, writeAddress } from './guest-access';

export interface PackedRingAddresses {
  readonly size: number;
  readonly descAddr: number;
  readonly driverEventAddr: number;
  readonly deviceEventAddr: number;
}

export interface PackedDriverOptions {
  readonly eventIdx: boolean;
}

export interface PackedUsedBuffer {
  readonly id: number;
  readonly len: number;
  /** WRITE flag of the used descriptor: len is meaningful (§2.8.3). */
  readonly written: boolean;
}

export class PackedRingDriver {
  readonly size: number;
  /** Next slot to fill and the Driver Ring Wrap Counter (§2.8.1). */
  nextAvail = 0;
  availWrap = 1;
  /** Next slot to poll for a used descriptor and the wrap counter expected there. */
  nextUsed = 0;
  usedWrap = 1;
  private freeSlots: number;
  private readonly freeIds: number[] = [];
  /** Ring slots each outstanding Buffer ID occupies. */
  private readonly slotsOf = new Map<number, number>();
  /** Slots made available since the last publish() (for the notification decision). */
  private addedSinceKick = 0;

  constructor(
    private readonly guest: GuestAccess,
    readonly addrs: PackedRingAddresses,
    private readonly options: PackedDriverOptions,
  ) {
    this.size = addrs.size;
    this.freeSlots = this.size;
    for (let id = this.size - 1; id >= 0; id--) this.freeIds.push(id);
    // §2.8.13: the descriptor ring starts zeroed; event suppression starts enabled.
    for (let i = 0; i < this.size; i++) guest.writeU16(addrs.descAddr + i * PackedDesc.SIZE + PackedDesc.FLAGS, 0);
    guest.writeU32(addrs.driverEventAddr, 0);
    guest.writeU32(addrs.deviceEventAddr, 0);
  }

  get freeDescriptors(): number {
    return this.freeSlots;
  }

  get outstanding(): number {
    return this.slotsOf.size;
  }

  /** AVAIL/USED bits marking a descriptor available under wrap counter `wrap`. */
  static availBits(wrap: number): number {
    return wrap !== 0 ? PackedDescFlags.AVAIL : PackedDescFlags.USED;
  }

  /** Writes ring slot `i` raw (flags exactly as given). */
  writeDescriptor(i: number, addr: number, len: number, id: number, flags: number): void {
    const o = this.addrs.descAddr + i * PackedDesc.SIZE;
    writeAddress(this.guest, o + PackedDesc.ADDR, addr);
    this.guest.writeU32(o + PackedDesc.LEN, len >>> 0);
    this.guest.writeU16(o + PackedDesc.ID, id & 0xffff);
    this.guest.writeU16(o + PackedDesc.FLAGS, flags & 0xffff);
  }

  /**
   * Makes `buffers` available as one list (or through an indirect table at
   * `indirectTable`), first descriptor's flags last (§2.8.6). Returns the
   * Buffer ID, or -1 when the ring lacks room.
   */
  add(buffers: readonly DriverBuffer[], indirectTable?: number): number {
    const slots = indirectTable === undefined ? buffers.length : 1;
    if (buffers.length === 0 || slots > this.freeSlots || this.freeIds.length === 0) return -1;
    const id = this.freeIds.pop() as number;
    const first = this.nextAvail;
    let firstFlags = 0;
    const put = (addr: number, len: number, flags: number): void => {
      const f = flags | PackedRingDriver.availBits(this.availWrap);
      if (this.nextAvail === first && firstFlags === 0) {
        firstFlags = f;
        this.writeDescriptor(this.nextAvail, addr, len, id, this.guest.readU16(this.addrs.descAddr + this.nextAvail * PackedDesc.SIZE + PackedDesc.FLAGS));
      } else {
        this.writeDescriptor(this.nextAvail, addr, len, id, f);
      }
      if (++this.nextAvail === this.size) {
        this.nextAvail = 0;
        this.availWrap ^= 1;
      }
    };
    if (indirectTable === undefined) {
      buffers.forEach((b, k) => put(b.addr, b.len, (k < buffers.length - 1 ? DescFlags.NEXT : 0) | (b.write ? DescFlags.WRITE : 0)));
    } else {
      buffers.forEach((b, k) => {
        const o = indirectTable + k * PackedDesc.SIZE;
        writeAddress(this.guest, o + PackedDesc.ADDR, b.addr);
        this.guest.writeU32(o + PackedDesc.LEN, b.len >>> 0);
        this.guest.writeU16(o + PackedDesc.ID, 0);
        this.guest.writeU16(o + PackedDesc.FLAGS, b.write ? DescFlags.WRITE : 0);
      });
      put(indirectTable, buffers.length * PackedDesc.SIZE, DescFlags.INDIRECT);
    }
    // Expose the list: first descriptor's flags last.
    this.guest.writeU16(this.addrs.descAddr + first * PackedDesc.SIZE + PackedDesc.FLAGS, firstFlags);
    this.freeSlots -= slots;
    this.slotsOf.set(id, slots);
    this.addedSinceKick += slots;
    return id;
  }

  /** Whether the device wants an available buffer notification for what was added since the last call (§2.8.10). */
  publish(): boolean {
    const added = this.addedSinceKick;
    this.addedSinceKick = 0;
    if (added === 0) return false;
    const event = this.guest.readU32(this.addrs.deviceEventAddr);
    const mode = (event >>> 16) & EventSuppression.FLAGS_MASK;
    if (mode === RingEventFlags.DISABLE) return false;
    if (mode !== RingEventFlags.DESC || !this.options.eventIdx) return true;
    return packedNeedEvent(event & 0xffff, this.nextAvail, this.availWrap, added, this.size);
  }

  /** Collects used descriptors in ring order (§2.8.22), skipping each list's length. */
  pollUsed(): PackedUsedBuffer[] {
    const out: PackedUsedBuffer[] = [];
    for (;;) {
      const o = this.addrs.descAddr + this.nextUsed * PackedDesc.SIZE;
      const flags = this.guest.readU16(o + PackedDesc.FLAGS);
      const avail = (flags >>> 7) & 1;
      const used = (flags >>> 15) & 1;
      if (avail !== used || used !== this.usedWrap) return out;
      const id = this.guest.readU16(o + PackedDesc.ID);
      const len = this.guest.readU32(o + PackedDesc.LEN);
      const slots = this.slotsOf.get(id);
      out.push({ id, len, written: (flags & DescFlags.WRITE) !== 0 });
      if (slots === undefined) return out; // not ours: cannot know how far to skip
      this.slotsOf.delete(id);
      this.freeIds.push(id);
      this.freeSlots += slots;
      this.nextUsed += slots;
      if (this.nextUsed >= this.size) {
        this.nextUsed -= this.size;
        this.usedWrap ^= 1;
      }
    }
  }

  /** Driver event suppression (§2.8.10): what the device reads before notifying. */
  setDriverEvent(mode: RingEventFlag, offset = 0, wrap = 0): void {
    this.guest.writeU32(this.addrs.driverEventAddr, ((mode << 16) | (offset & EventSuppression.OFFSET_MASK) | ((wrap & 1) << 15)) >>> 0);
  }

  /** The device event suppression struct (desc in the low 16 bits, flags above). */
  deviceEvent(): number {
    return this.guest.readU32(this.addrs.deviceEventAddr);
  }
}
