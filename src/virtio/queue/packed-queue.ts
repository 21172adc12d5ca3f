// Packed virtqueue, device side (virtio 1.2 §2.8).
//
// One descriptor ring shared by both sides: the driver marks descriptors
// available with AVAIL = its wrap counter and USED = the inverse; the device
// overwrites consumed descriptors with used ones (AVAIL = USED = its wrap
// counter, §2.8.1). Each side polls one location: the next descriptor's flags,
// read and written with Atomics (acquire/release, §2.8.21). Used descriptors
// of one flush are exposed together by writing the batch's first flags last
// (§2.8.9), so the driver never sees a partial batch.
import {
  DescFlags,
  EventSuppression,
  PackedAlign,
  PackedDesc,
  PackedDescFlags,
  QUEUE_SIZE_MAX,
  RingEventFlags,
  packedDescRingSize,
} from 'virtio-spec-types';
import type { GuestMemory } from '../../memory/guest-memory';
import type { BufferBurst } from './buffer-burst';
import type { DescriptorChain } from './descriptor-chain';
import { packedNeedEvent } from './event-idx';
import { QueueError, QueueErrorCounters } from './queue-error';
import { locateRingArea, type RingArea } from './ring-area';
import type { QueueLayout, QueueOptions, Virtqueue } from './virtqueue';

// Hot-path constants as module consts: read per descriptor, a module const costs
// less than a property load on the package's object.
const DESC_SIZE = PackedDesc.SIZE;
const DESC_ADDR = PackedDesc.ADDR;
const DESC_LEN = PackedDesc.LEN;
const DESC_ID = PackedDesc.ID;
const DESC_FLAGS = PackedDesc.FLAGS;
const F_NEXT = DescFlags.NEXT;
const F_WRITE = DescFlags.WRITE;
const F_INDIRECT = DescFlags.INDIRECT;
const F_AVAIL_USED = PackedDescFlags.AVAIL | PackedDescFlags.USED;
const WRAP_SHIFT = EventSuppression.WRAP_SHIFT;
const EVENT_MODE_MASK = EventSuppression.FLAGS_MASK;
const MODE_DISABLE = RingEventFlags.DISABLE;
const MODE_DESC = RingEventFlags.DESC;

const NO_AREA: RingArea = { error: QueueError.None, region: -1, offset: 0 };
const EMPTY_VIEW = new DataView(new ArrayBuffer(0));
const EMPTY_U16 = new Uint16Array(0);
const EMPTY_U32 = new Uint32Array(0);
/** u16 elements per descriptor. */
const DESC_U16 = DESC_SIZE / 2;
/** Event suppression struct as one le32: desc (off | wrap << 15) in the low half, flags in the high half. */
const EVENT_FLAGS_SHIFT = 16;
const EVENT_DISABLE = RingEventFlags.DISABLE << EVENT_FLAGS_SHIFT;
const EVENT_ENABLE = RingEventFlags.ENABLE << EVENT_FLAGS_SHIFT;
const EVENT_DESC = RingEventFlags.DESC << EVENT_FLAGS_SHIFT;

/** §2.8.1: available when AVAIL matches the wrap counter and USED does not. */
function isAvailable(flags: number, wrap: number): boolean {
  return ((flags >>> 7) & 1) === wrap && ((flags >>> 15) & 1) !== wrap;
}

/** A packed resume point: offset | wrap << 15 with offset < size; -1 when `v` is not one. */
function parseBase(v: number | undefined, size: number): number {
  if (v === undefined) return 1 << EventSuppression.WRAP_SHIFT; // offset 0, wrap counter 1 (§2.8.1)
  return Number.isInteger(v) && v >= 0 && v <= 0xffff && (v & EventSuppression.OFFSET_MASK) < size ? v : -1;
}

export class PackedQueue implements Virtqueue {
  readonly kind = 'packed' as const;
  readonly size: number;
  private readonly memory: GuestMemory;
  private readonly counters: QueueErrorCounters;
  private readonly eventIdx: boolean;
  private readonly indirect: boolean;

  // Descriptor ring: DataView for the fields, u16 elements for the flags (Atomics).
  private readonly descView: DataView;
  private readonly descU16: Uint16Array;
  private readonly descBase: number;
  /** u16 element index of descriptor 0's flags; descriptor i's is flagsAt0 + i * DESC_U16. */
  private readonly flagsAt0: number;
  // Event suppression structs as single u32 elements.
  private readonly driverEventU32: Uint32Array;
  private readonly driverEventAt: number;
  private readonly deviceEventU32: Uint32Array;
  private readonly deviceEventAt: number;

  private errorCode: QueueError = QueueError.None;
  /** Next descriptor to read and the Driver Ring Wrap Counter expected there. */
  private availPos: number;
  private availWrap: number;
  /** Next descriptor to overwrite with a used one and the Device Ring Wrap Counter. */
  private usedPos: number;
  private usedWrap: number;
  /** Ring slots popped and not yet pushed. */
  private inFlight = 0;
  /** Slots pushed since the last flush. */
  private pendingSlots = 0;
  /** Slot of the first used descriptor of the unflushed batch (-1: none) and its deferred flags. */
  private batchFirst = -1;
  private batchFirstFlags = 0;
  private lastPopSlots = 0;
  private undoable = false;
  /** Buffers and ring slots popped since mark(). */
  private sinceMarkBuffers = 0;
  private sinceMarkSlots = 0;
  private signalledValid = false;
  /** Last value written to the device event suppression struct (the device owns it). */
  private deviceEvent = EVENT_ENABLE;

  constructor(memory: GuestMemory, layout: QueueLayout, options: QueueOptions) {
    this.memory = memory;
    this.counters = options.counters ?? new QueueErrorCounters();
    this.eventIdx = options.features.eventIdx;
    this.indirect = options.features.indirect;

    // §2.8: up to 2^15 entries; no power-of-2 rule.
    const size = layout.size;
    const sizeOk = Number.isInteger(size) && size >= 1 && size <= QUEUE_SIZE_MAX;
    const desc = sizeOk ? locateRingArea(memory, layout.descAddr, packedDescRingSize(size), PackedAlign.DESC) : NO_AREA;
    const driver = sizeOk && desc.error === QueueError.None
      ? locateRingArea(memory, layout.driverAddr, EventSuppression.SIZE, PackedAlign.DRIVER_EVENT)
      : NO_AREA;
    const device = sizeOk && desc.error === QueueError.None && driver.error === QueueError.None
      ? locateRingArea(memory, layout.deviceAddr, EventSuppression.SIZE, PackedAlign.DEVICE_EVENT)
      : NO_AREA;
    const availBase = parseBase(options.availBase, size);
    const usedBase = parseBase(options.usedBase, size);
    let error: QueueError = sizeOk ? desc.error || driver.error || device.error : QueueError.InvalidQueueSize;
    if (error === QueueError.None && (availBase < 0 || usedBase < 0)) error = QueueError.InvalidRingBase;
    const ok = error === QueueError.None;

    this.size = ok ? size : 0;
    this.descView = ok ? memory.regionView(desc.region) : EMPTY_VIEW;
    this.descU16 = ok ? memory.regionU16(desc.region) : EMPTY_U16;
    this.descBase = desc.offset;
    this.flagsAt0 = (desc.offset + DESC_FLAGS) / 2;
    this.driverEventU32 = ok ? memory.regionU32(driver.region) : EMPTY_U32;
    this.driverEventAt = driver.offset / 4;
    this.deviceEventU32 = ok ? memory.regionU32(device.region) : EMPTY_U32;
    this.deviceEventAt = device.offset / 4;

    this.availPos = ok ? availBase & EventSuppression.OFFSET_MASK : 0;
    this.availWrap = ok ? availBase >>> WRAP_SHIFT : 1;
    this.usedPos = ok ? usedBase & EventSuppression.OFFSET_MASK : 0;
    this.usedWrap = ok ? usedBase >>> WRAP_SHIFT : 1;
    if (!ok) this.fail(error);
  }

  get error(): QueueError {
    return this.errorCode;
  }

  get broken(): boolean {
    return this.errorCode !== QueueError.None;
  }

  get nextAvail(): number {
    return this.availPos | (this.availWrap << WRAP_SHIFT);
  }

  get nextUsed(): number {
    return this.usedPos | (this.usedWrap << WRAP_SHIFT);
  }

  stop(reason: QueueError): void {
    this.fail(reason === QueueError.None ? QueueError.DeviceRejected : reason);
  }

  hasAvailable(): boolean {
    if (this.errorCode !== QueueError.None) return false;
    return isAvailable(Atomics.load(this.descU16, this.flagsAt0 + this.availPos * DESC_U16), this.availWrap);
  }

  pop(chain: DescriptorChain): boolean {
    if (this.errorCode !== QueueError.None) return false;
    const size = this.size;
    let pos = this.availPos;
    let wrap = this.availWrap;
    // Acquire: the rest of the list is read after its first flags (§2.8.6: written last by the driver).
    let flags = Atomics.load(this.descU16, this.flagsAt0 + pos * DESC_U16);
    if (!isAvailable(flags, wrap)) return false;
    // Every slot is held by the device: the driver overwrote descriptors it does not own.
    if (this.inFlight >= size) return this.fail(QueueError.RingOverrun);
    if (chain.capacity < size) chain.ensureCapacity(size);
    chain.clear();
    const view = this.descView;
    let slots = 0;
    let id: number;
    for (;;) {
      slots++;
      const o = this.descBase + pos * DESC_SIZE;
      if ((flags & F_INDIRECT) !== 0) {
        // §2.8.19: an indirect descriptor stands alone, never in a NEXT-linked list.
        if (!this.indirect) return this.fail(QueueError.IndirectNotNegotiated);
        if ((flags & F_NEXT) !== 0) return this.fail(QueueError.IndirectWithNext);
        if (slots > 1) return this.fail(QueueError.IndirectInChain);
        const error = this.walkIndirect(
          view.getUint32(o + DESC_ADDR, true),
          view.getUint32(o + DESC_ADDR + 4, true),
          view.getUint32(o + DESC_LEN, true),
          chain,
        );
        if (error !== QueueError.None) return this.fail(error);
        id = view.getUint16(o + DESC_ID, true);
        break;
      }
      const error = chain.append(
        this.memory,
        view.getUint32(o + DESC_ADDR, true),
        view.getUint32(o + DESC_ADDR + 4, true),
        view.getUint32(o + DESC_LEN, true),
        (flags & F_WRITE) !== 0,
        size,
      );
      if (error !== QueueError.None) return this.fail(error);
      if ((flags & F_NEXT) === 0) {
        // §2.8.6: the Buffer ID is in the list's last descriptor.
        id = view.getUint16(o + DESC_ID, true);
        break;
      }
      // §2.8.17: a list is no longer than Queue Size (NEXT around the whole ring would loop).
      if (slots >= size) return this.fail(QueueError.ChainTooLong);
      if (++pos === size) {
        pos = 0;
        wrap ^= 1;
      }
      flags = view.getUint16(this.descBase + pos * DESC_SIZE + DESC_FLAGS, true);
    }
    if (this.inFlight + slots > size) return this.fail(QueueError.RingOverrun);
    if (++pos === size) {
      pos = 0;
      wrap ^= 1;
    }
    this.availPos = pos;
    this.availWrap = wrap;
    chain.headId = id;
    chain.ringSlots = slots;
    this.inFlight += slots;
    this.lastPopSlots = slots;
    this.sinceMarkBuffers++;
    this.sinceMarkSlots += slots;
    this.undoable = true;
    return true;
  }

  /** Not batched for packed rings yet: every buffer goes by pop(). */
  peekBurst(burst: BufferBurst, _max: number): number {
    burst.count = 0;
    return 0;
  }

  retireBurst(burst: BufferBurst, count: number): void {
    if (this.errorCode === QueueError.None && count !== 0) this.fail(QueueError.DeviceMisuse);
    burst.count = 0;
  }

  holdBurst(burst: BufferBurst, count: number): void {
    this.retireBurst(burst, count);
  }

  undo(): boolean {
    const slots = this.lastPopSlots;
    if (this.errorCode !== QueueError.None || !this.undoable || this.inFlight < slots) return false;
    this.undoable = false;
    this.stepBack(slots);
    this.inFlight -= slots;
    if (this.sinceMarkBuffers > 0) {
      this.sinceMarkBuffers--;
      this.sinceMarkSlots -= slots;
    }
    return true;
  }

  mark(): void {
    this.sinceMarkBuffers = 0;
    this.sinceMarkSlots = 0;
  }

  rewind(): number {
    const n = this.sinceMarkBuffers;
    const slots = this.sinceMarkSlots;
    if (this.errorCode !== QueueError.None || n === 0) return 0;
    // Some of them were pushed already: the device lost track of its buffers.
    if (slots > this.inFlight) {
      this.fail(QueueError.DeviceMisuse);
      return 0;
    }
    this.stepBack(slots);
    this.inFlight -= slots;
    this.mark();
    this.undoable = false;
    return n;
  }

  /** Moves the read position back `slots` (at most Queue Size) descriptors, across the ring start if need be. */
  private stepBack(slots: number): void {
    let pos = this.availPos - slots;
    if (pos < 0) {
      pos += this.size;
      this.availWrap ^= 1;
    }
    this.availPos = pos;
  }

  push(headId: number, writtenLen: number, ringSlots: number): void {
    if (this.errorCode !== QueueError.None) return;
    if (
      (headId & 0xffff) !== headId ||
      writtenLen >>> 0 !== writtenLen ||
      !(ringSlots >= 1 && ringSlots <= this.inFlight && Number.isInteger(ringSlots))
    ) {
      this.fail(QueueError.DeviceMisuse);
      return;
    }
    const pos = this.usedPos;
    const o = this.descBase + pos * DESC_SIZE;
    const view = this.descView;
    view.setUint32(o + DESC_LEN, writtenLen, true);
    view.setUint16(o + DESC_ID, headId, true);
    // §2.8.1: AVAIL = USED = Device Ring Wrap Counter; §2.8.3: WRITE says data was written (len valid).
    const flags = (this.usedWrap !== 0 ? F_AVAIL_USED : 0) | (writtenLen > 0 ? F_WRITE : 0);
    if (this.batchFirst < 0) {
      this.batchFirst = pos;
      this.batchFirstFlags = flags;
    } else {
      // Invisible until the batch's first flags are stored in flush(): the driver polls in ring order.
      view.setUint16(o + DESC_FLAGS, flags, true);
    }
    // §2.8.6: skip the rest of the list's descriptors.
    let next = pos + ringSlots;
    if (next >= this.size) {
      next -= this.size;
      this.usedWrap ^= 1;
    }
    this.usedPos = next;
    this.inFlight -= ringSlots;
    this.pendingSlots += ringSlots;
  }

  flush(): boolean {
    if (this.errorCode !== QueueError.None || this.pendingSlots === 0) return false;
    // Release: every used descriptor of the batch is written before the first one's flags.
    Atomics.store(this.descU16, this.flagsAt0 + this.batchFirst * DESC_U16, this.batchFirstFlags);
    this.batchFirst = -1;
    const advanced = this.pendingSlots;
    this.pendingSlots = 0;
    // §2.8.10: full barrier (seq-cst store then load) before reading the driver's event suppression.
    const event = Atomics.load(this.driverEventU32, this.driverEventAt);
    const wasValid = this.signalledValid;
    this.signalledValid = true;
    const mode = (event >>> EVENT_FLAGS_SHIFT) & EVENT_MODE_MASK;
    if (mode === MODE_DISABLE) return false;
    // ENABLE, DESC without EVENT_IDX, and the reserved value 3 all mean: notify.
    if (mode !== MODE_DESC || !this.eventIdx) return true;
    if (!wasValid) return true;
    return packedNeedEvent(event & 0xffff, this.usedPos, this.usedWrap, advanced, this.size);
  }

  enableNotifications(): boolean {
    if (this.errorCode !== QueueError.None) return false;
    // §2.8.10: with EVENT_IDX, ask for a notification when the next descriptor we will read becomes available.
    this.writeDeviceEvent(
      this.eventIdx ? EVENT_DESC | this.availPos | (this.availWrap << WRAP_SHIFT) : EVENT_ENABLE,
    );
    // The driver may have made buffers available before it saw the store: look again.
    return this.hasAvailable();
  }

  disableNotifications(): void {
    if (this.errorCode !== QueueError.None) return;
    this.writeDeviceEvent(EVENT_DISABLE);
  }

  private writeDeviceEvent(value: number): void {
    if (value === this.deviceEvent) return;
    this.deviceEvent = value;
    // One le32 store writes desc and flags together; seq-cst orders it before the re-check load.
    Atomics.store(this.deviceEventU32, this.deviceEventAt, value);
  }

  /** Appends the buffers of the indirect table at addrHi:addrLo, `len` bytes (§2.8.7). */
  private walkIndirect(addrLo: number, addrHi: number, len: number, chain: DescriptorChain): QueueError {
    if (len === 0 || len % DESC_SIZE !== 0) return QueueError.IndirectLength;
    const entries = len / DESC_SIZE;
    if (entries > this.size) return QueueError.IndirectTooLong;
    const memory = this.memory;
    const addr = addrHi * 0x1_0000_0000 + addrLo;
    const r = memory.find(addr, len);
    if (r < 0) return QueueError.AddressOutOfRange;
    const view = memory.regionView(r);
    const base = memory.regionOffset(r, addr);
    // §2.8.7: entries are consecutive; only WRITE counts (NEXT and Buffer ID are ignored).
    for (let j = 0; j < entries; j++) {
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
    }
    return QueueError.None;
  }

  private fail(error: QueueError): false {
    if (this.errorCode === QueueError.None) {
      this.errorCode = error;
      this.counters.record(error);
    }
    return false;
  }
}
