// The test guest's RAM: one ArrayBuffer mapped at a guest-physical base.
// The device sees it through a bounds-checked GuestMemory (what the VMM
// hands to devices); the driver writes it directly through a GuestBus (what
// a vCPU does), so driver accesses never show up in the device-side
// `outOfRange` count. A bump allocator hands out rings, tables and buffers.
import { GuestBus } from '../fuzz/guest-bus';
import { GuestMemory } from '../memory/guest-memory';

export const DEFAULT_RAM_BASE = 0x10_0000;
export const DEFAULT_RAM_SIZE = 32 * 1024 * 1024;

export class GuestRam {
  readonly buffer: ArrayBuffer;
  /** The whole RAM; byte `gpa - base` is guest-physical `gpa`. */
  readonly bytes: Uint8Array;
  /** The device's view (bounds-checked, counts rejected accesses). */
  readonly memory: GuestMemory;
  /** The driver's view: plain little-endian loads and stores at guest-physical addresses. */
  readonly access: GuestBus;
  private next: number;

  constructor(
    readonly size = DEFAULT_RAM_SIZE,
    readonly base = DEFAULT_RAM_BASE,
    /** Memory to use instead of a fresh ArrayBuffer (e.g. a mapping another thread's device sees too), at least `size` bytes. */
    buffer?: ArrayBuffer,
  ) {
    if (!Number.isSafeInteger(size) || size <= 0 || size % 8 !== 0) throw new RangeError(`ram size ${size} is not a positive multiple of 8`);
    if (buffer && buffer.byteLength < size) throw new RangeError(`ram buffer of ${buffer.byteLength} bytes is smaller than ${size}`);
    this.buffer = buffer ?? new ArrayBuffer(size);
    this.bytes = new Uint8Array(this.buffer);
    // Only `size` bytes are the guest's: a larger buffer may carry VMM-only pages after them (guest-umem bounce frames).
    this.memory = GuestMemory.fromArrayBuffer(this.buffer, base, 0, size);
    this.access = new GuestBus(this.bytes, [{ gpa: base, offset: 0, length: size }]);
    this.next = base;
  }

  /** First guest-physical address past RAM (anything from here on is outside guest memory). */
  get end(): number {
    return this.base + this.size;
  }

  /** Bytes handed out so far. */
  get allocated(): number {
    return this.next - this.base;
  }

  /** Reserves `len` bytes aligned to `align` (a power of 2) and returns their guest-physical address. */
  alloc(len: number, align = 16): number {
    if (!Number.isSafeInteger(len) || len < 0) throw new RangeError(`alloc: bad length ${len}`);
    const at = Math.ceil(this.next / align) * align;
    if (at + len > this.end) throw new RangeError(`guest RAM exhausted: ${len} bytes wanted, ${this.end - at} left`);
    this.next = at + len;
    this.bytes.fill(0, at - this.base, at - this.base + len);
    return at;
  }

  /** Offset in `bytes` of guest-physical `gpa` (for direct, allocation-free access). */
  offsetOf(gpa: number): number {
    return gpa - this.base;
  }

  write(gpa: number, data: Uint8Array): void {
    this.bytes.set(data, this.checked(gpa, data.length));
  }

  /** A copy of [gpa, gpa + len). */
  read(gpa: number, len: number): Uint8Array {
    const o = this.checked(gpa, len);
    return this.bytes.slice(o, o + len);
  }

  /** A view of [gpa, gpa + len) (no copy). */
  view(gpa: number, len: number): Uint8Array {
    const o = this.checked(gpa, len);
    return this.bytes.subarray(o, o + len);
  }

  fill(gpa: number, len: number, value: number): void {
    const o = this.checked(gpa, len);
    this.bytes.fill(value, o, o + len);
  }

  private checked(gpa: number, len: number): number {
    const o = gpa - this.base;
    if (!Number.isSafeInteger(o) || o < 0 || len < 0 || o + len > this.size) {
      throw new RangeError(`guest RAM access [0x${gpa.toString(16)}, +${len}) is outside RAM`);
    }
    return o;
  }
}
