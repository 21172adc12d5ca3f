// The guest's own view of its memory in the fuzz engine: it writes the
// backing buffer directly (like a vCPU would), so its writes bypass the
// device-side accessor and its bounds counters. Writes outside the mapped
// regions go nowhere; reads there return 0.
import type { GuestAccess } from './guest-access';

export interface BusRegion {
  readonly gpa: number;
  /** Byte offset of the region in the backing buffer. */
  readonly offset: number;
  readonly length: number;
}

export class GuestBus implements GuestAccess {
  private readonly view: DataView;

  constructor(
    backing: Uint8Array,
    private readonly regions: readonly BusRegion[],
  ) {
    this.view = new DataView(backing.buffer, backing.byteOffset, backing.byteLength);
  }

  /** Backing-buffer offset of [gpa, gpa + len), or -1. */
  private at(gpa: number, len: number): number {
    if (!Number.isSafeInteger(gpa) || gpa < 0) return -1;
    for (const r of this.regions) {
      if (gpa >= r.gpa && gpa + len <= r.gpa + r.length) return r.offset + (gpa - r.gpa);
    }
    return -1;
  }

  readU8(gpa: number): number {
    const o = this.at(gpa, 1);
    return o < 0 ? 0 : this.view.getUint8(o);
  }

  readU16(gpa: number): number {
    const o = this.at(gpa, 2);
    return o < 0 ? 0 : this.view.getUint16(o, true);
  }

  readU32(gpa: number): number {
    const o = this.at(gpa, 4);
    return o < 0 ? 0 : this.view.getUint32(o, true);
  }

  writeU8(gpa: number, value: number): void {
    const o = this.at(gpa, 1);
    if (o >= 0) this.view.setUint8(o, value);
  }

  writeU16(gpa: number, value: number): void {
    const o = this.at(gpa, 2);
    if (o >= 0) this.view.setUint16(o, value, true);
  }

  writeU32(gpa: number, value: number): void {
    const o = this.at(gpa, 4);
    if (o >= 0) this.view.setUint32(o, value >>> 0, true);
  }
}
