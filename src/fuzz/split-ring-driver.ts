// A well-behaved split-ring driver (virtio 1.2 §2.7.13, §2.7.14) for tests
// and the fuzz engine: it owns the descriptor free list, offers chains
// (direct or through an indirect table), publishes avail->idx, decides
// whether to notify, and collects used buffers. Test code: it allocates.
import { DescFlags, SplitAvail, SplitDesc, SplitUsed, VIRTQ_USED_F_NO_NOTIFY, VIRTQ_AVAIL_F_NO_INTERRUPT, splitAvailEventOffset, splitUsedEventOffset } from 'virtio-spec-types';
import { vringNeedEvent } from '../virtio/queue/event-idx';
import { type DriverBuffer, type GuestAccess, type UsedBuffer, writeAddress } from './guest-access';

export interface SplitRingAddresses {
  readonly size: number;
  readonly descAddr: number;
  readonly availAddr: number;
  readonly usedAddr: number;
}

export interface SplitDriverOptions {
  readonly eventIdx: boolean;
  /** Initial avail->idx / used->idx (to start near the 2^16 wrap). */
  readonly base?: number;
}

export class SplitRingDriver {
  readonly size: number;
  /** Next avail->idx to publish. */
  availIdx: number;
  /** avail->idx at the last publish() (for the notification decision). */
  private publishedIdx: number;
  private lastUsed: number;
  /** Times used->idx jumped implausibly far (a broken or hostile device, or a scribbled ring). */
  usedIdxErrors = 0;
  private readonly free: number[] = [];
  /** Descriptors held by each outstanding head. */
  private readonly held = new Map<number, number[]>();

  constructor(
    private readonly guest: GuestAccess,
    readonly addrs: SplitRingAddresses,
    private readonly options: SplitDriverOptions,
  ) {
    this.size = addrs.size;
    const base = (options.base ?? 0) & 0xffff;
    this.availIdx = base;
    this.publishedIdx = base;
    this.lastUsed = base;
    for (let i = this.size - 1; i >= 0; i--) this.free.push(i);
    // §2.7.13 set-up: the driver initialises both rings.
    guest.writeU16(addrs.availAddr + SplitAvail.FLAGS, 0);
    guest.writeU16(addrs.availAddr + SplitAvail.IDX, base);
    guest.writeU16(addrs.availAddr + splitUsedEventOffset(this.size), base);
    guest.writeU16(addrs.usedAddr + SplitUsed.FLAGS, 0);
    guest.writeU16(addrs.usedAddr + SplitUsed.IDX, base);
    guest.writeU16(addrs.usedAddr + splitAvailEventOffset(this.size), base);
  }

  get freeDescriptors(): number {
    return this.free.length;
  }

  get outstanding(): number {
    return this.held.size;
  }

  /** Writes descriptor `i` of the table raw (any flags / next, 64-bit address). */
  writeDescriptor(i: number, addr: number, len: number, flags: number, next: number): void {
    const o = this.addrs.descAddr + i * SplitDesc.SIZE;
    writeAddress(this.guest, o + SplitDesc.ADDR, addr);
    this.guest.writeU32(o + SplitDesc.LEN, len >>> 0);
    this.guest.writeU16(o + SplitDesc.FLAGS, flags & 0xffff);
    this.guest.writeU16(o + SplitDesc.NEXT, next & 0xffff);
  }

  /** Puts `head` in the next avail ring slot (not yet published). */
  offerHead(head: number): void {
    this.guest.writeU16(this.addrs.availAddr + SplitAvail.RING + 2 * (this.availIdx % this.size), head & 0xffff);
    this.availIdx = (this.availIdx + 1) & 0xffff;
  }

  /**
   * Offers `buffers` as one chain; with `indirectTable` they go into an
   * indirect table written at that address. Returns the head, or -1 when
   * not enough descriptors are free.
   */
  add(buffers: readonly DriverBuffer[], indirectTable?: number): number {
    const need = indirectTable === undefined ? buffers.length : 1;
    if (buffers.length === 0 || need > this.free.length) return -1;
    const descs: number[] = [];
    for (let k = 0; k < need; k++) descs.push(this.free.pop() as number);
    if (indirectTable === undefined) {
      buffers.forEach((b, k) => {
        const last = k === buffers.length - 1;
        const flags = (last ? 0 : DescFlags.NEXT) | (b.write ? DescFlags.WRITE : 0);
        this.writeDescriptor(descs[k], b.addr, b.len, flags, last ? 0 : descs[k + 1]);
      });
    } else {
      buffers.forEach((b, k) => {
        const last = k === buffers.length - 1;
        const o = indirectTable + k * SplitDesc.SIZE;
        writeAddress(this.guest, o + SplitDesc.ADDR, b.addr);
        this.guest.writeU32(o + SplitDesc.LEN, b.len >>> 0);
        this.guest.writeU16(o + SplitDesc.FLAGS, (last ? 0 : DescFlags.NEXT) | (b.write ? DescFlags.WRITE : 0));
        this.guest.writeU16(o + SplitDesc.NEXT, last ? 0 : k + 1);
      });
      this.writeDescriptor(descs[0], indirectTable, buffers.length * SplitDesc.SIZE, DescFlags.INDIRECT, 0);
    }
    this.held.set(descs[0], descs);
    this.offerHead(descs[0]);
    return descs[0];
  }

  /** Publishes avail->idx (§2.7.13.3) and returns whether the device wants a notification (§2.7.10). */
  publish(): boolean {
    const old = this.publishedIdx;
    this.guest.writeU16(this.addrs.availAddr + SplitAvail.IDX, this.availIdx);
    this.publishedIdx = this.availIdx;
    if (old === this.availIdx) return false;
    if (this.options.eventIdx) {
      return vringNeedEvent(this.guest.readU16(this.addrs.usedAddr + splitAvailEventOffset(this.size)), this.availIdx, old);
    }
    return (this.guest.readU16(this.addrs.usedAddr + SplitUsed.FLAGS) & VIRTQ_USED_F_NO_NOTIFY) === 0;
  }

  /** used->idx as the device last published it. */
  usedIdx(): number {
    return this.guest.readU16(this.addrs.usedAddr + SplitUsed.IDX);
  }

  /**
   * Collects used buffers (§2.7.14) and frees their descriptors. Unknown ids
   * are returned but free nothing. A used->idx more than Queue Size ahead is
   * garbage: counted in `usedIdxErrors`, skipped, nothing returned.
   */
  pollUsed(): UsedBuffer[] {
    const out: UsedBuffer[] = [];
    const idx = this.usedIdx();
    if (((idx - this.lastUsed) & 0xffff) > this.size) {
      this.usedIdxErrors++;
      this.lastUsed = idx;
      return out;
    }
    while (this.lastUsed !== idx) {
      const o = this.addrs.usedAddr + SplitUsed.RING + SplitUsed.ELEM_SIZE * (this.lastUsed % this.size);
      const id = this.guest.readU32(o + SplitUsed.ELEM_ID);
      const len = this.guest.readU32(o + SplitUsed.ELEM_LEN);
      const descs = this.held.get(id);
      if (descs !== undefined) {
        this.held.delete(id);
        for (const d of descs) this.free.push(d);
      }
      out.push({ id, len });
      this.lastUsed = (this.lastUsed + 1) & 0xffff;
    }
    return out;
  }

  /** §2.7.10: used_event: "notify me once used->idx passes this". */
  setUsedEvent(idx: number): void {
    this.guest.writeU16(this.addrs.availAddr + splitUsedEventOffset(this.size), idx & 0xffff);
  }

  /** §2.7.7: avail->flags NO_INTERRUPT (meaningful without EVENT_IDX). */
  setNoInterrupt(on: boolean): void {
    this.guest.writeU16(this.addrs.availAddr + SplitAvail.FLAGS, on ? VIRTQ_AVAIL_F_NO_INTERRUPT : 0);
  }
}
