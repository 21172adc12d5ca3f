// Split virtqueue, device side (virtio 1.2 §2.7).
//
// The three ring parts are located once at set-up; afterwards every access is
// a typed-array or DataView access at a fixed offset inside an already
// checked region. Index fields shared with the driver (avail->idx,
// used->idx, flags, used_event / avail_event) go through Atomics: the
// sequentially consistent load/store order element writes before the index
// write (§2.7.8.2) and give the full barrier needed between publishing an
// index and reading the other side's event index (§2.7.7, §2.7.10).
import {
  DescFlags,
  QUEUE_SIZE_MAX,
  SplitAlign,
  SplitAvail,
  SplitDesc,
  SplitUsed,
  VIRTQ_AVAIL_F_NO_INTERRUPT,
  VIRTQ_USED_F_NO_NOTIFY,
  splitAvailEventOffset,
  splitAvailSize,
  splitDescTableSize,
  splitUsedEventOffset,
  splitUsedSize,
} from 'virtio-spec-types';
import type { GuestMemory } from '../../memory/guest-memory';
import { BURST_HEAD, BURST_LEN, BURST_REGION, BURST_STRIDE, BURST_WRITABLE, type BufferBurst } from './buffer-burst';
import type { DescriptorChain } from './descriptor-chain';
import { vringNeedEvent } from './event-idx';
import { QueueError, QueueErrorCounters } from './queue-error';
import { locateRingArea, type RingArea } from './ring-area';
import type { QueueLayout, QueueOptions, Virtqueue } from './virtqueue';

// Hot-path constants as module consts: read per descriptor, a module const costs
// less than a property load on the package's object.
const DESC_SIZE = SplitDesc.SIZE;
const DESC_WORDS = SplitDesc.SIZE / 4;
const DESC_ADDR = SplitDesc.ADDR;
const DESC_LEN = SplitDesc.LEN;
const DESC_FLAGS = SplitDesc.FLAGS;
const DESC_NEXT = SplitDesc.NEXT;
const B_HEAD = BURST_HEAD;
const B_LEN = BURST_LEN;
const B_REGION = BURST_REGION;
const B_STRIDE = BURST_STRIDE;
const B_WRITABLE = BURST_WRITABLE;
const F_NEXT = DescFlags.NEXT;
const F_WRITE = DescFlags.WRITE;
const F_INDIRECT = DescFlags.INDIRECT;
const NO_INTERRUPT = VIRTQ_AVAIL_F_NO_INTERRUPT;
const NO_NOTIFY = VIRTQ_USED_F_NO_NOTIFY;

const TWO_POW_32 = 0x1_0000_0000;
/** A descriptor address's high word from which the address is 2^53 or more (not an exact number). */
const ADDR_HI_LIMIT = 0x20_0000;

// Element indices in the ring parts' views (§2.7.6, §2.7.8).
const AVAIL_FLAGS = SplitAvail.FLAGS / 2;
const AVAIL_IDX = SplitAvail.IDX / 2;
const AVAIL_RING = SplitAvail.RING / 2;
const USED_FLAGS = SplitUsed.FLAGS / 2;
const USED_IDX = SplitUsed.IDX / 2;
const USED_RING = SplitUsed.RING / 4;

const NO_AREA: RingArea = { error: QueueError.None, region: -1, offset: 0 };
const EMPTY_U16 = new Uint16Array(0);
const EMPTY_U32 = new Uint32Array(0);

/** A split resume point is any u16 index; -1 when `v` is not one. */
function parseBase(v: number | undefined): number {
  if (v === undefined) return 0;
  return Number.isInteger(v) && v >= 0 && v <= 0xffff ? v : -1;
}

export class SplitQueue implements Virtqueue {
  readonly kind = 'split' as const;
  readonly size: number;
  private readonly memory: GuestMemory;
  private readonly counters: QueueErrorCounters;
  private readonly eventIdx: boolean;
  private readonly indirect: boolean;
  private readonly mask: number;

  // Each ring part (§2.7) as its own view, so every index is a small integer. Descriptor table: four le32
  // words per entry (addr lo, addr hi, len, flags | next << 16).
  private readonly descU32: Uint32Array;
  // Driver Area as le16: flags, idx, ring[size], used_event.
  private readonly availU16: Uint16Array;
  private readonly usedEventAt: number;
  // Device Area: le16 for flags, idx and avail_event; le32 for the ring's elements (id, len) from word 1.
  private readonly usedU16: Uint16Array;
  private readonly usedU32: Uint32Array;
  private readonly availEventAt: number;

  /** Loop detection: stamps[i] === stampGen once descriptor i was visited by the current walk. */
  private readonly stamps: Uint32Array;
  private stampGen = 0;

  private errorCode: QueueError = QueueError.None;
  /** Next avail ring entry to consume (free-running u16). */
  private lastAvail: number;
  /** avail->idx as last read. */
  private availSeen: number;
  /** Next used ring entry to fill (free-running u16); published by flush(). */
  private usedIdx: number;
  /** used->idx at the last notification decision (`old` of vring_need_event). */
  private signalledUsed: number;
  /** False until the first decision: with no reference point, notify. */
  private signalledValid = false;
  /** Elements pushed since the last flush. */
  private pending = 0;
  /** Chains popped and not yet pushed. */
  private inFlight = 0;
  private undoable = false;
  /** Chains popped since mark(). */
  private sinceMark = 0;
  /** Without EVENT_IDX: whether used->flags currently asks for notifications. */
  private notifyOn = true;

  constructor(memory: GuestMemory, layout: QueueLayout, options: QueueOptions) {
    this.memory = memory;
    this.counters = options.counters ?? new QueueErrorCounters();
    this.eventIdx = options.features.eventIdx;
    this.indirect = options.features.indirect;

    // §2.7: Queue Size is a power of 2 no larger than 32768.
    const size = layout.size;
    const sizeOk = Number.isInteger(size) && size >= 1 && size <= QUEUE_SIZE_MAX && (size & (size - 1)) === 0;
    const desc = sizeOk ? locateRingArea(memory, layout.descAddr, splitDescTableSize(size), SplitAlign.DESC) : NO_AREA;
    const avail = sizeOk && desc.error === QueueError.None
      ? locateRingArea(memory, layout.driverAddr, splitAvailSize(size), SplitAlign.AVAIL)
      : NO_AREA;
    const used = sizeOk && desc.error === QueueError.None && avail.error === QueueError.None
      ? locateRingArea(memory, layout.deviceAddr, splitUsedSize(size), SplitAlign.USED)
      : NO_AREA;
    const availBase = parseBase(options.availBase);
    const usedBase = parseBase(options.usedBase);
    let error: QueueError = sizeOk ? desc.error || avail.error || used.error : QueueError.InvalidQueueSize;
    if (error === QueueError.None && (availBase < 0 || usedBase < 0)) error = QueueError.InvalidRingBase;
    const ok = error === QueueError.None;

    this.size = ok ? size : 0;
    this.mask = ok ? size - 1 : 0;
    this.descU32 = ok ? memory.areaU32(desc.region, desc.offset, splitDescTableSize(size) / 4) : EMPTY_U32;
    this.availU16 = ok ? memory.areaU16(avail.region, avail.offset, splitAvailSize(size) / 2) : EMPTY_U16;
    this.usedEventAt = splitUsedEventOffset(this.size) / 2;
    this.usedU16 = ok ? memory.areaU16(used.region, used.offset, splitUsedSize(size) / 2) : EMPTY_U16;
    this.usedU32 = ok ? memory.areaU32(used.region, used.offset, Math.floor(splitUsedSize(size) / 4)) : EMPTY_U32;
    this.availEventAt = splitAvailEventOffset(this.size) / 2;
    this.stamps = new Uint32Array(this.size);

    this.lastAvail = ok ? availBase : 0;
    this.availSeen = this.lastAvail;
    this.usedIdx = ok ? usedBase : 0;
    this.signalledUsed = this.usedIdx;
    if (!ok) this.fail(error);
  }

  get error(): QueueError {
    return this.errorCode;
  }

  get broken(): boolean {
    return this.errorCode !== QueueError.None;
  }

  get nextAvail(): number {
    return this.lastAvail;
  }

  get nextUsed(): number {
    return this.usedIdx;
  }

  stop(reason: QueueError): void {
    this.fail(reason === QueueError.None ? QueueError.DeviceRejected : reason);
  }

  hasAvailable(): boolean {
    if (this.errorCode !== QueueError.None) return false;
    return this.lastAvail !== this.availSeen || this.refreshAvail();
  }

  pop(chain: DescriptorChain): boolean {
    if (this.errorCode !== QueueError.None) return false;
    if (this.lastAvail === this.availSeen && !this.refreshAvail()) return false;
    // More heads than descriptors: the driver re-offered some the device still holds.
    if (this.inFlight >= this.size) return this.fail(QueueError.RingOverrun);
    // Plain read, ordered after the Atomics.load of avail->idx in refreshAvail.
    const head = this.availU16[AVAIL_RING + (this.lastAvail & this.mask)];
    if (head >= this.size) return this.fail(QueueError.HeadOutOfRange);
    if (chain.capacity < this.size) chain.ensureCapacity(this.size);
    chain.clear();
    // The usual buffer is one descriptor, neither NEXT nor INDIRECT: appended here, small enough for V8 to
    // inline into the caller (no loop is possible, no stamps needed); longer chains take the walk.
    const d = this.descU32;
    const h = head * DESC_WORDS;
    const headFlags = d[h + 3]! & 0xffff;
    let error: QueueError;
    if ((headFlags & (F_NEXT | F_INDIRECT)) === 0) {
      chain.ringSlots = 1;
      error = chain.append(this.memory, d[h]!, d[h + 1]!, d[h + 2]!, (headFlags & F_WRITE) !== 0, this.size);
    } else error = this.walk(head, chain);
    if (error !== QueueError.None) return this.fail(error);
    chain.headId = head;
    this.lastAvail = (this.lastAvail + 1) & 0xffff;
    this.inFlight++;
    this.sinceMark++;
    this.undoable = true;
    return true;
  }

  peekBurst(burst: BufferBurst, max: number): number {
    burst.count = 0;
    if (this.errorCode !== QueueError.None) return 0;
    let ready = (this.availSeen - this.lastAvail) & 0xffff;
    // Fewer seen than wanted: the driver may have added more since (one index read a burst).
    if (ready < max) {
      this.refreshAvail();
      if (this.errorCode !== QueueError.None) return 0;
      ready = (this.availSeen - this.lastAvail) & 0xffff;
    }
    // pop() reports a re-offered head (RingOverrun) once the device holds every descriptor.
    const room = this.size - this.inFlight;
    let n = ready < room ? ready : room;
    if (n > max) n = max;
    if (n > burst.capacity) n = burst.capacity;
    const { availU16: avail, descU32: d, memory, mask, size } = this;
    const { words, offset } = burst;
    const last = this.lastAvail;
    // The region the previous buffer was in, as locals: consecutive buffers are mostly in the same one.
    let r = -1;
    let start = 0;
    let end = 0;
    let i = 0;
    for (; i < n; i++) {
      const head = avail[AVAIL_RING + ((last + i) & mask)]!;
      if (head >= size) break;
      const h = head * DESC_WORDS;
      const flags = d[h + 3]! & 0xffff;
      const hi = d[h + 1]!;
      // A chain, an indirect table or an address of 2^53 or more: pop() takes it (and judges it).
      if ((flags & (F_NEXT | F_INDIRECT)) !== 0 || hi >= ADDR_HI_LIMIT) break;
      const gpa = hi * TWO_POW_32 + d[h]!;
      const len = d[h + 2]!;
      if (!(r >= 0 && gpa >= start && len <= end - gpa)) {
        r = memory.regionHolding(gpa, len);
        if (r < 0) break;
        start = memory.regionBase(r);
        end = start + memory.regionBytes(r).byteLength;
      }
      const w = i * B_STRIDE;
      words[w + B_HEAD] = head;
      words[w + B_LEN] = len;
      words[w + B_REGION] = r;
      words[w + B_WRITABLE] = (flags & F_WRITE) !== 0 ? 1 : 0;
      offset[i] = gpa - start;
    }
    burst.count = i;
    return i;
  }

  retireBurst(burst: BufferBurst, count: number): void {
    if (!this.takeBurst(burst, count)) return;
    const { usedU32: used, mask } = this;
    const { words, written } = burst;
    const at = this.usedIdx;
    // §2.7.8: written now, published with used->idx in flush().
    for (let i = 0; i < count; i++) {
      const e = USED_RING + ((at + i) & mask) * 2;
      used[e] = words[i * B_STRIDE + B_HEAD]!;
      used[e + 1] = written[i]!;
    }
    this.usedIdx = (at + count) & 0xffff;
    this.pending += count;
  }

  holdBurst(burst: BufferBurst, count: number): void {
    // peekBurst() took no more than size - inFlight, so the held ones fit.
    if (this.takeBurst(burst, count)) this.inFlight += count;
  }

  /** The first `count` buffers of the last peekBurst() leave the avail ring; false: the queue is (now) broken. */
  private takeBurst(burst: BufferBurst, count: number): boolean {
    if (this.errorCode !== QueueError.None) return false;
    if (!(count >>> 0 === count && count <= burst.count)) {
      this.fail(QueueError.DeviceMisuse);
      return false;
    }
    this.lastAvail = (this.lastAvail + count) & 0xffff;
    this.undoable = false;
    burst.count = 0;
    return true;
  }

  undo(): boolean {
    if (this.errorCode !== QueueError.None || !this.undoable || this.inFlight === 0) return false;
    this.undoable = false;
    this.lastAvail = (this.lastAvail - 1) & 0xffff;
    this.inFlight--;
    if (this.sinceMark > 0) this.sinceMark--;
    return true;
  }

  mark(): void {
    this.sinceMark = 0;
  }

  rewind(): number {
    const n = this.sinceMark;
    if (this.errorCode !== QueueError.None || n === 0) return 0;
    // Some of them were pushed already: the device lost track of its buffers.
    if (n > this.inFlight) {
      this.fail(QueueError.DeviceMisuse);
      return 0;
    }
    this.lastAvail = (this.lastAvail - n) & 0xffff;
    this.inFlight -= n;
    this.sinceMark = 0;
    this.undoable = false;
    return n;
  }

  push(headId: number, writtenLen: number, _ringSlots: number): void {
    if (this.errorCode !== QueueError.None) return;
    if (this.inFlight === 0 || !(headId >>> 0 === headId && headId < this.size) || writtenLen >>> 0 !== writtenLen) {
      this.fail(QueueError.DeviceMisuse);
      return;
    }
    // §2.7.8: the element is written now, published with used->idx in flush().
    const at = USED_RING + (this.usedIdx & this.mask) * 2;
    this.usedU32[at] = headId;
    this.usedU32[at + 1] = writtenLen;
    this.usedIdx = (this.usedIdx + 1) & 0xffff;
    this.pending++;
    this.inFlight--;
  }

  flush(): boolean {
    if (this.errorCode !== QueueError.None || this.pending === 0) return false;
    this.pending = 0;
    // §2.7.8.2: elements before the index (seq-cst store orders the plain writes above).
    Atomics.store(this.usedU16, USED_IDX, this.usedIdx);
    if (this.eventIdx) {
      // §2.7.7: full barrier (seq-cst store then load) before reading used_event.
      const event = Atomics.load(this.availU16, this.usedEventAt);
      const old = this.signalledUsed;
      this.signalledUsed = this.usedIdx;
      if (!this.signalledValid) {
        this.signalledValid = true;
        return true;
      }
      return vringNeedEvent(event, this.usedIdx, old);
    }
    // §2.7.7: without EVENT_IDX the driver can only say "no interrupts" in avail->flags.
    return (Atomics.load(this.availU16, AVAIL_FLAGS) & NO_INTERRUPT) === 0;
  }

  enableNotifications(after = 1): boolean {
    if (this.errorCode !== QueueError.None) return false;
    if (this.eventIdx) {
      // §2.7.10: notify me once you have added the entry at lastAvail (+ after - 1).
      const n = after > 1 ? (after < this.size ? after : this.size) : 1;
      Atomics.store(this.usedU16, this.availEventAt, (this.lastAvail + n - 1) & 0xffff);
      if (n > 1) return this.refreshAvail() && ((this.availSeen - this.lastAvail) & 0xffff) >= n;
    } else if (!this.notifyOn) {
      Atomics.store(this.usedU16, USED_FLAGS, 0);
      this.notifyOn = true;
    }
    // The driver may have added buffers before it saw the store: look again (seq-cst orders store then load).
    return this.hasAvailable();
  }

  disableNotifications(): void {
    if (this.errorCode !== QueueError.None) return;
    // With EVENT_IDX, leaving avail_event behind the driver's idx already suppresses notifications.
    if (!this.eventIdx && this.notifyOn) {
      Atomics.store(this.usedU16, USED_FLAGS, NO_NOTIFY);
      this.notifyOn = false;
    }
  }

  /** Reads avail->idx; false when nothing new. A jump of more than Queue Size stops the queue (§2.7.13.3). */
  private refreshAvail(): boolean {
    const idx = Atomics.load(this.availU16, AVAIL_IDX);
    const ahead = (idx - this.lastAvail) & 0xffff;
    if (ahead > this.size) return this.fail(QueueError.AvailIdxJump);
    this.availSeen = idx;
    return ahead !== 0;
  }

  /** Walks the chain starting at descriptor `head` into `chain` (§2.7.5, §2.7.5.3); `pop` takes single descriptors itself. */
  private walk(head: number, chain: DescriptorChain): QueueError {
    const d = this.descU32;
    const size = this.size;
    const stamps = this.stamps;
    const gen = this.nextStamp();
    let i = head;
    let slots = 0;
    for (;;) {
      if (stamps[i] === gen) return QueueError.DescriptorLoop;
      stamps[i] = gen;
      slots++;
      // le32 words of the 16-byte descriptor: addr lo, addr hi, len, flags | next << 16.
      const o = i * DESC_WORDS;
      const flagsNext = d[o + 3]!;
      const flags = flagsNext & 0xffff;
      if ((flags & F_INDIRECT) !== 0) {
        // §2.7.5.3.1: INDIRECT ends the chain; zero or more direct descriptors may precede it (§2.7.5.3.2).
        if (!this.indirect) return QueueError.IndirectNotNegotiated;
        if ((flags & F_NEXT) !== 0) return QueueError.IndirectWithNext;
        chain.ringSlots = slots;
        return this.walkIndirect(d[o]!, d[o + 1]!, d[o + 2]!, chain);
      }
      const error = chain.append(this.memory, d[o]!, d[o + 1]!, d[o + 2]!, (flags & F_WRITE) !== 0, size);
      if (error !== QueueError.None) return error;
      if ((flags & F_NEXT) === 0) {
        chain.ringSlots = slots;
        return QueueError.None;
      }
      i = flagsNext >>> 16;
      if (i >= size) return QueueError.NextOutOfRange;
    }
  }

  /** Appends the buffers of the indirect table at addrHi:addrLo, `len` bytes (§2.7.5.3). */
  private walkIndirect(addrLo: number, addrHi: number, len: number, chain: DescriptorChain): QueueError {
    if (len === 0 || len % DESC_SIZE !== 0) return QueueError.IndirectLength;
    const entries = len / DESC_SIZE;
    if (entries > this.size) return QueueError.IndirectTooLong;
    const memory = this.memory;
    const addr = addrHi * 0x1_0000_0000 + addrLo;
    const r = memory.find(addr, len);
    if (r < 0) return QueueError.AddressOutOfRange;
    // Indirect tables have no alignment rule: DataView reads work at any offset.
    const view = memory.regionView(r);
    const base = memory.regionOffset(r, addr);
    const stamps = this.stamps;
    const gen = this.nextStamp();
    let j = 0;
    for (;;) {
      if (stamps[j] === gen) return QueueError.DescriptorLoop;
      stamps[j] = gen;
      const o = base + j * DESC_SIZE;
      const flags = view.getUint16(o + DESC_FLAGS, true);
      if ((flags & F_INDIRECT) !== 0) return QueueError.NestedIndirect;
      const error = chain.append(
        memory,
        view.getUint32(o + DESC_ADDR, true),
        view.getUint32(o + DESC_ADDR + 4, true),
        view.getUint32(o + DESC_LEN, true),
        (flags & F_WRITE) !== 0,
        this.size,
      );
      if (error !== QueueError.None) return error;
      if ((flags & F_NEXT) === 0) return QueueError.None;
      j = view.getUint16(o + DESC_NEXT, true);
      if (j >= entries) return QueueError.NextOutOfRange;
    }
  }

  private nextStamp(): number {
    if (++this.stampGen === 0xffff_ffff) {
      this.stamps.fill(0);
      this.stampGen = 1;
    }
    return this.stampGen;
  }

  private fail(error: QueueError): false {
    if (this.errorCode === QueueError.None) {
      this.errorCode = error;
      this.counters.record(error);
    }
    return false;
  }
}
