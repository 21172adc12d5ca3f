// Locating a ring part (descriptor area, driver area, device area) in guest
// memory once, when the queue is set up, so the hot path indexes typed arrays
// at fixed offsets without further lookups.
import type { GuestMemory } from '../../memory/guest-memory';
import { QueueError } from './queue-error';

export interface RingArea {
  /** QueueError.None, RingOutOfRange or RingMisaligned. */
  readonly error: QueueError;
  /** Region holding the whole part (-1 on error). */
  readonly region: number;
  /** Byte offset of the part within the region. */
  readonly offset: number;
}

/** Checks that [gpa, gpa + len) lies in one region and gpa is a multiple of `align` (§2.7.1, §2.8.11). */
export function locateRingArea(memory: GuestMemory, gpa: number, len: number, align: number): RingArea {
  const region = memory.find(gpa, len);
  if (region < 0) return { error: QueueError.RingOutOfRange, region: -1, offset: 0 };
  if (gpa % align !== 0) return { error: QueueError.RingMisaligned, region: -1, offset: 0 };
  return { error: QueueError.None, region, offset: memory.regionOffset(region, gpa) };
}
