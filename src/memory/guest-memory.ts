// One bounds-checked accessor over guest RAM made of one or more regions.
//
// Everything the guest hands us (descriptor addresses, lengths, ring
// addresses) is hostile: every access goes through `find`, which accepts a
// range only if it lies wholly inside one region, and counts every rejection
// in `outOfRange`. Ranges that straddle two regions are rejected (no split
// copies): give the constructor GPA-adjacent memory as one region.
//
// Two ways in:
// - hot path: `find(gpa, len)` returns a region index (or -1) without
//   allocating or throwing; then `regionBytes(i)`, `regionView(i)`,
//   `regionU16(i)` / `regionU32(i)` (for Atomics) and `regionOffset(i, gpa)`;
// - convenience (set-up, control paths, tests): `readU8..U64`, `writeU8..U64`,
//   `read`, `write`, `view`, which throw GuestMemoryError on a bad range.
import { endianness } from 'node:os';

export class GuestMemoryError extends Error {
  override name = 'GuestMemoryError';
}

export interface MemoryRegion {
  /** Guest-physical address of the first byte. */
  readonly gpa: number;
  /** The region's bytes (a view over memory that other threads and the kernel may also see). */
  readonly bytes: Uint8Array;
}

const TWO_POW_32 = 0x1_0000_0000;
/** Region addresses and ends stay at or below 2^53 so that every in-range address is an exact number. */
const ADDRESS_LIMIT = Number.MAX_SAFE_INTEGER + 1;
/**
 * Regions start on an 8-byte boundary, both as guest-physical address and as
 * offset in their buffer, so a naturally aligned guest field is a naturally
 * aligned Uint16Array / Uint32Array element (needed for Atomics on ring indices).
 */
const REGION_ALIGN = 8;

function hex(n: number): string {
  return Number.isFinite(n) && n >= 0 ? `0x${n.toString(16)}` : String(n);
}

export class GuestMemory {
  readonly regions: readonly MemoryRegion[];
  readonly regionCount: number;
  private readonly starts: Float64Array;
  /** Exclusive end of each region. */
  private readonly ends: Float64Array;
  private readonly bytesOf: readonly Uint8Array[];
  private readonly viewOf: readonly DataView[];
  private readonly u16Of: readonly Uint16Array[];
  private readonly u32Of: readonly Uint32Array[];
  private rejected = 0;
  /** Region of the last successful lookup: consecutive accesses mostly hit the same one. */
  private lastHit = 0;

  /** Builds memory over `buffer[byteOffset, byteOffset + byteLength)` mapped at `gpa` (tests, loaders). */
  static fromArrayBuffer(
    buffer: ArrayBufferLike,
    gpa = 0,
    byteOffset = 0,
    byteLength: number = buffer.byteLength - byteOffset,
  ): GuestMemory {
    return new GuestMemory([{ gpa, bytes: new Uint8Array(buffer, byteOffset, byteLength) }]);
  }

  constructor(regions: readonly MemoryRegion[]) {
    // Typed arrays use the host byte order; virtio is little-endian.
    if (endianness() !== 'LE') throw new GuestMemoryError('guest memory needs a little-endian host');
    const n = regions.length;
    this.regions = Object.freeze(regions.slice());
    this.regionCount = n;
    this.starts = new Float64Array(n);
    this.ends = new Float64Array(n);
    const bytesOf: Uint8Array[] = [];
    const viewOf: DataView[] = [];
    const u16Of: Uint16Array[] = [];
    const u32Of: Uint32Array[] = [];
    for (let i = 0; i < n; i++) {
      const { gpa, bytes } = regions[i];
      if (!(bytes instanceof Uint8Array)) throw new GuestMemoryError(`region ${i}: bytes is not a Uint8Array`);
      if (!Number.isSafeInteger(gpa) || gpa < 0 || gpa % REGION_ALIGN !== 0) {
        throw new GuestMemoryError(`region ${i}: gpa ${hex(gpa)} is not a non-negative multiple of ${REGION_ALIGN} below 2^53`);
      }
      if (bytes.byteOffset % REGION_ALIGN !== 0) {
        throw new GuestMemoryError(`region ${i}: bytes.byteOffset ${bytes.byteOffset} is not a multiple of ${REGION_ALIGN}`);
      }
      const end = gpa + bytes.byteLength;
      if (end > ADDRESS_LIMIT) throw new GuestMemoryError(`region ${i}: ends past 2^53`);
      for (let j = 0; j < i; j++) {
        if (gpa < this.ends[j] && this.starts[j] < end) {
          throw new GuestMemoryError(`region ${i} [${hex(gpa)}, ${hex(end)}) overlaps region ${j}`);
        }
      }
      this.starts[i] = gpa;
      this.ends[i] = end;
      bytesOf.push(bytes);
      viewOf.push(new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      u16Of.push(new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >>> 1));
      u32Of.push(new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >>> 2));
    }
    this.bytesOf = bytesOf;
    this.viewOf = viewOf;
    this.u16Of = u16Of;
    this.u32Of = u32Of;
  }

  /** Number of accesses rejected because they fell outside guest memory. */
  get outOfRange(): number {
    return this.rejected;
  }

  // ------------------------------------------------------------ hot path

  /**
   * Index of the region holding all of [gpa, gpa + len), or -1 (counted in
   * `outOfRange`) when the range is not wholly inside one region or gpa/len
   * is negative, fractional, NaN, infinite or not below 2^53. A zero-length
   * range is accepted anywhere from a region's start to its end inclusive.
   */
  find(gpa: number, len: number): number {
    if (Number.isSafeInteger(gpa) && Number.isSafeInteger(len) && gpa >= 0 && len >= 0) {
      const r = this.regionHolding(gpa, len);
      if (r >= 0) return r;
    }
    this.rejected++;
    return -1;
  }

  /**
   * As `find` for a range already known to be integers in [0, 2^53) (a descriptor's fields), without
   * counting a miss: for a fast path that leaves whatever misses to a `find` that will count it.
   */
  regionHolding(gpa: number, len: number): number {
    const starts = this.starts;
    const ends = this.ends;
    const hit = this.lastHit;
    // `len <= end - gpa` cannot overflow: both sides are exact below 2^53.
    if (hit < this.regionCount && gpa >= starts[hit] && len <= ends[hit] - gpa) return hit;
    for (let i = 0; i < this.regionCount; i++) {
      if (gpa >= starts[i] && len <= ends[i] - gpa) {
        this.lastHit = i;
        return i;
      }
    }
    return -1;
  }

  /** Guest-physical address of region `i`'s first byte. */
  regionBase(i: number): number {
    return this.starts[i];
  }

  /** Byte offset of `gpa` within region `i` (only meaningful after `find` returned `i` for it). */
  regionOffset(i: number, gpa: number): number {
    return gpa - this.starts[i];
  }

  regionBytes(i: number): Uint8Array {
    return this.bytesOf[i];
  }

  /** DataView over region `i` (little-endian reads with `true`). */
  regionView(i: number): DataView {
    return this.viewOf[i];
  }

  /** Uint16Array over region `i`: element k is the le16 at offset 2k (for Atomics on 2-aligned fields). */
  regionU16(i: number): Uint16Array {
    return this.u16Of[i];
  }

  /** Uint32Array over region `i`: element k is the le32 at offset 4k (for Atomics on 4-aligned fields). */
  regionU32(i: number): Uint32Array {
    return this.u32Of[i];
  }

  /**
   * Uint16Array over `count` le16 elements of region `i` from byte `offset` (2-aligned), or Uint32Array over
   * `count` le32 (4-aligned): a ring part's own view, made once at set-up. Its element indices stay small
   * integers, where indices into a whole region would be numbers V8 keeps as doubles (a region offset can pass
   * 2^31), converted and checked at every access. Throws GuestMemoryError unless the range lies in the region.
   */
  areaU16(i: number, offset: number, count: number): Uint16Array {
    const bytes = this.areaBytes(i, offset, 2 * count, 2);
    return new Uint16Array(bytes.buffer, bytes.byteOffset, count);
  }

  areaU32(i: number, offset: number, count: number): Uint32Array {
    const bytes = this.areaBytes(i, offset, 4 * count, 4);
    return new Uint32Array(bytes.buffer, bytes.byteOffset, count);
  }

  private areaBytes(i: number, offset: number, length: number, align: number): Uint8Array {
    const bytes = this.bytesOf[i];
    if (bytes === undefined) throw new GuestMemoryError(`no region ${i}`);
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset % align !== 0 || length > bytes.byteLength - offset) {
      throw new GuestMemoryError(`area [${hex(offset)}, +${length}) is not ${align}-aligned inside region ${i}`);
    }
    return bytes.subarray(offset, offset + length);
  }

  // ---------------------------------------------------------- convenience

  /** Region index for [gpa, gpa + len), or a thrown GuestMemoryError (counted). */
  private locate(gpa: number, len: number): number {
    const i = this.find(gpa, len);
    if (i < 0) throw new GuestMemoryError(`${len}-byte access at ${hex(gpa)} is outside guest memory`);
    return i;
  }

  readU8(gpa: number): number {
    const i = this.locate(gpa, 1);
    return this.bytesOf[i][gpa - this.starts[i]];
  }

  readU16(gpa: number): number {
    const i = this.locate(gpa, 2);
    return this.viewOf[i].getUint16(gpa - this.starts[i], true);
  }

  readU32(gpa: number): number {
    const i = this.locate(gpa, 4);
    return this.viewOf[i].getUint32(gpa - this.starts[i], true);
  }

  /** Reads a le64; throws GuestMemoryError when the value is 2^53 or more (not exact as a number). */
  readU64(gpa: number): number {
    const i = this.locate(gpa, 8);
    const view = this.viewOf[i];
    const off = gpa - this.starts[i];
    const hi = view.getUint32(off + 4, true);
    if (hi >= 0x20_0000) throw new GuestMemoryError(`u64 at ${hex(gpa)} is 2^53 or more`);
    return hi * TWO_POW_32 + view.getUint32(off, true);
  }

  writeU8(gpa: number, value: number): void {
    if ((value & 0xff) !== value) throw new RangeError(`${value} is not a u8`);
    const i = this.locate(gpa, 1);
    this.bytesOf[i][gpa - this.starts[i]] = value;
  }

  writeU16(gpa: number, value: number): void {
    if ((value & 0xffff) !== value) throw new RangeError(`${value} is not a u16`);
    const i = this.locate(gpa, 2);
    this.viewOf[i].setUint16(gpa - this.starts[i], value, true);
  }

  writeU32(gpa: number, value: number): void {
    if (value >>> 0 !== value) throw new RangeError(`${value} is not a u32`);
    const i = this.locate(gpa, 4);
    this.viewOf[i].setUint32(gpa - this.starts[i], value, true);
  }

  /** Writes a le64 from a number in 0..2^53-1. */
  writeU64(gpa: number, value: number): void {
    if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`${value} is not a u64 below 2^53`);
    const i = this.locate(gpa, 8);
    const view = this.viewOf[i];
    const off = gpa - this.starts[i];
    view.setUint32(off, value % TWO_POW_32, true);
    view.setUint32(off + 4, Math.floor(value / TWO_POW_32), true);
  }

  /** Copies guest [gpa, gpa + len) to dst[dstOff, dstOff + len). */
  read(gpa: number, dst: Uint8Array, dstOff: number, len: number): void {
    checkSpan(dst, dstOff, len, 'dst');
    const i = this.locate(gpa, len);
    const off = gpa - this.starts[i];
    dst.set(this.bytesOf[i].subarray(off, off + len), dstOff);
  }

  /** Copies src[srcOff, srcOff + len) to guest [gpa, gpa + len). */
  write(gpa: number, src: Uint8Array, srcOff: number, len: number): void {
    checkSpan(src, srcOff, len, 'src');
    const i = this.locate(gpa, len);
    const off = gpa - this.starts[i];
    this.bytesOf[i].set(src.subarray(srcOff, srcOff + len), off);
  }

  /** A Uint8Array view of guest [gpa, gpa + len) (allocates a view: not for per-packet use). */
  view(gpa: number, len: number): Uint8Array {
    const i = this.locate(gpa, len);
    const off = gpa - this.starts[i];
    return this.bytesOf[i].subarray(off, off + len);
  }
}

/** Host-side buffer arguments are the caller's responsibility: a bad one is a bug, not the guest's doing. */
function checkSpan(buf: Uint8Array, off: number, len: number, name: string): void {
  if (!Number.isSafeInteger(off) || !Number.isSafeInteger(len) || off < 0 || len < 0 || len > buf.length - off) {
    throw new RangeError(`${name}[${off}, +${len}) is outside a ${buf.length}-byte buffer`);
  }
}
