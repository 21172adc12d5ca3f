// One virtqueue as the driver runs it, split (§2.7) or packed (§2.8): ring
// memory allocated in guest RAM, chains offered directly or through an
// indirect table (§2.7.5.3 / §2.8.7), the notification decision and the
// notify write, used buffers collected, and used-buffer notifications asked
// for or suppressed (used_event / avail->flags, §2.7.7 and §2.7.10; driver
// event suppression, §2.8.10). The ring mechanics are the fuzzer's drivers
// (src/fuzz); this adds what a whole driver needs around them.
import {
  PackedAlign,
  PackedDesc,
  RingEventFlags,
  SplitAlign,
  SplitDesc,
  packedDescRingSize,
  splitAvailSize,
  splitDescTableSize,
  splitUsedSize,
} from 'virtio-spec-types';
import type { DriverBuffer } from '../fuzz/guest-access';
import { PackedRingDriver } from '../fuzz/packed-ring-driver';
import { SplitRingDriver } from '../fuzz/split-ring-driver';
import type { GuestRam } from './guest-ram';

export type RingKind = 'split' | 'packed';

export interface DriverQueueOptions {
  readonly index: number;
  readonly size: number;
  readonly kind: RingKind;
  /** VIRTIO_F_EVENT_IDX negotiated. */
  readonly eventIdx: boolean;
  readonly ram: GuestRam;
  /** Writes the queue's notify address (the transport's "kick"). */
  readonly notify: (index: number) => void;
  /** Entries per pooled indirect table (longer tables are allocated one-off). Default 64. */
  readonly maxIndirect?: number;
}

export interface UsedElement {
  /** Split: head descriptor index; packed: Buffer ID. */
  readonly id: number;
  /** Bytes the device wrote into the buffer. */
  readonly len: number;
}

export class DriverQueue {
  readonly index: number;
  readonly size: number;
  readonly kind: RingKind;
  readonly eventIdx: boolean;
  /** The ring drivers (for raw descriptor writes in misbehaviour tests). */
  readonly split: SplitRingDriver | undefined;
  readonly packed: PackedRingDriver | undefined;
  readonly descAddr: number;
  readonly driverAddr: number;
  readonly deviceAddr: number;
  /** Notify writes made. */
  kicks = 0;
  private readonly ram: GuestRam;
  private readonly notifyFn: (index: number) => void;
  private readonly maxIndirect: number;
  private interruptsWanted = true;
  /** Split: used->idx the driver has consumed up to. */
  private usedSeen = 0;
  /** Indirect table pool: `size` tables of maxIndirect entries, allocated on first use. */
  private tableBase = -1;
  private readonly tableFree: number[] = [];
  private readonly tableOf = new Map<number, number>();

  constructor(o: DriverQueueOptions) {
    this.index = o.index;
    this.size = o.size;
    this.kind = o.kind;
    this.eventIdx = o.eventIdx;
    this.ram = o.ram;
    this.notifyFn = o.notify;
    this.maxIndirect = o.maxIndirect ?? 64;
    const ram = o.ram;
    if (o.kind === 'split') {
      this.descAddr = ram.alloc(splitDescTableSize(o.size), Math.max(SplitAlign.DESC, 4096));
      this.driverAddr = ram.alloc(splitAvailSize(o.size), SplitAlign.AVAIL);
      this.deviceAddr = ram.alloc(splitUsedSize(o.size), 4096);
      this.split = new SplitRingDriver(ram.access, { size: o.size, descAddr: this.descAddr, availAddr: this.driverAddr, usedAddr: this.deviceAddr }, { eventIdx: o.eventIdx });
    } else {
      this.descAddr = ram.alloc(packedDescRingSize(o.size), Math.max(PackedAlign.DESC, 4096));
      this.driverAddr = ram.alloc(4, PackedAlign.DRIVER_EVENT);
      this.deviceAddr = ram.alloc(4, PackedAlign.DEVICE_EVENT);
      this.packed = new PackedRingDriver(
        ram.access,
        { size: o.size, descAddr: this.descAddr, driverEventAddr: this.driverAddr, deviceEventAddr: this.deviceAddr },
        { eventIdx: o.eventIdx },
      );
    }
  }

  /** Descriptors (split) or ring slots (packed) free for new chains. */
  get freeDescriptors(): number {
    return this.split?.freeDescriptors ?? this.packed!.freeDescriptors;
  }

  /** Chains offered and not yet used. */
  get outstanding(): number {
    return this.split?.outstanding ?? this.packed!.outstanding;
  }

  /**
   * Offers `buffers` as one chain, through an indirect table when `indirect`.
   * Returns the chain's id (split head / packed Buffer ID) or -1 when the
   * ring has no room. Not visible to the device until publish()/kick().
   */
  add(buffers: readonly DriverBuffer[], indirect = false): number {
    let slot = -1;
    let table: number | undefined;
    if (indirect) {
      if (buffers.length <= this.maxIndirect) {
        slot = this.takeTable();
        if (slot < 0) return -1;
        table = this.tableBase + slot * this.maxIndirect * SplitDesc.SIZE;
      } else {
        table = this.ram.alloc(buffers.length * PackedDesc.SIZE, 16); // one-off: over-long tables in tests
      }
    }
    const id = this.split ? this.split.add(buffers, table) : this.packed!.add(buffers, table);
    if (id < 0) {
      if (slot >= 0) this.tableFree.push(slot);
      return -1;
    }
    if (slot >= 0) this.tableOf.set(id, slot);
    return id;
  }

  /** Publishes what was added; returns whether the device asked to be notified (§2.7.10 / §2.8.10). */
  publish(): boolean {
    return this.split ? this.split.publish() : this.packed!.publish();
  }

  /** publish(), then the notify write if the device wants one. Returns whether it notified. */
  kick(): boolean {
    if (!this.publish()) return false;
    this.notify();
    return true;
  }

  /** The notify write, unconditionally. */
  notify(): void {
    this.kicks++;
    this.notifyFn(this.index);
  }

  /** Used buffers since the last call, in ring order; re-arms used-buffer notifications if wanted. */
  pollUsed(): UsedElement[] {
    let out: UsedElement[];
    if (this.split) {
      out = this.split.pollUsed();
      this.usedSeen = (this.usedSeen + out.length) & 0xffff;
    } else {
      out = this.packed!.pollUsed();
    }
    for (const u of out) {
      const slot = this.tableOf.get(u.id);
      if (slot !== undefined) {
        this.tableOf.delete(u.id);
        this.tableFree.push(slot);
      }
    }
    if (out.length > 0 && this.interruptsWanted) this.armInterrupts();
    return out;
  }

  /** Asks for (or suppresses) used-buffer notifications from the next used buffer on. */
  setInterrupts(on: boolean): void {
    this.interruptsWanted = on;
    if (on) {
      this.armInterrupts();
      return;
    }
    if (this.split) {
      // §2.7.10: with EVENT_IDX, an event index just behind ours is reached only after a full 2^16 lap.
      if (this.eventIdx) this.split.setUsedEvent((this.usedSeen - 1) & 0xffff);
      else this.split.setNoInterrupt(true);
    } else {
      this.packed!.setDriverEvent(RingEventFlags.DISABLE);
    }
  }

  private armInterrupts(): void {
    if (this.split) {
      if (this.eventIdx) this.split.setUsedEvent(this.usedSeen);
      else this.split.setNoInterrupt(false);
    } else if (this.eventIdx) {
      const p = this.packed!;
      p.setDriverEvent(RingEventFlags.DESC, p.nextUsed, p.usedWrap);
    } else {
      this.packed!.setDriverEvent(RingEventFlags.ENABLE);
    }
  }

  private takeTable(): number {
    if (this.tableBase < 0) {
      this.tableBase = this.ram.alloc(this.size * this.maxIndirect * SplitDesc.SIZE, 16);
      for (let i = this.size - 1; i >= 0; i--) this.tableFree.push(i);
    }
    return this.tableFree.pop() ?? -1;
  }
}
