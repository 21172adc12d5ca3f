import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { packedNeedEvent, vringNeedEvent } from '../src/virtio/queue/event-idx';

/** Reference: is `event` one of the indices old, old+1, ..., new-1 (mod 2^16)? */
function passed(event: number, newIdx: number, oldIdx: number): boolean {
  for (let i = oldIdx; i !== newIdx; i = (i + 1) & 0xffff) if (i === event) return true;
  return false;
}

test('vring_need_event: event inside [old, new) only, also across 2^16', () => {
  assert.ok(vringNeedEvent(5, 6, 5));
  assert.not.ok(vringNeedEvent(6, 6, 5));
  assert.not.ok(vringNeedEvent(4, 6, 5));
  assert.not.ok(vringNeedEvent(5, 5, 5), 'nothing moved');
  assert.ok(vringNeedEvent(0xffff, 0x0001, 0xfffe));
  assert.ok(vringNeedEvent(0x0000, 0x0001, 0xfffe));
  assert.not.ok(vringNeedEvent(0x0001, 0x0001, 0xfffe));
  assert.not.ok(vringNeedEvent(0xfffd, 0x0001, 0xfffe));
});

test('vring_need_event agrees with the definition for windows up to 300 entries around the wrap', () => {
  let checked = 0;
  for (const start of [0, 1, 0x7fff, 0xfff0, 0xffff]) {
    for (let width = 0; width <= 300; width += 7) {
      const newIdx = (start + width) & 0xffff;
      for (let d = -10; d <= width + 10; d++) {
        const event = (start + d) & 0xffff;
        assert.is(vringNeedEvent(event, newIdx, start), passed(event, newIdx, start), `event=${event} old=${start} new=${newIdx}`);
        checked++;
      }
    }
  }
  assert.ok(checked > 10_000);
});

/** Reference for packed rings: walk the `advanced` slots that ended at (newIdx, newWrap) and see if (off, wrap) is among them. */
function packedPassed(off: number, wrap: number, newIdx: number, newWrap: number, advanced: number, size: number): boolean {
  let idx = newIdx;
  let w = newWrap;
  for (let k = 0; k < advanced; k++) {
    if (--idx < 0) {
      idx = size - 1;
      w ^= 1;
    }
    if (idx === off && w === wrap) return true;
  }
  return false;
}

test('packed DESC event: offset + wrap counter, exhaustive for small rings', () => {
  let checked = 0;
  for (const size of [1, 2, 3, 4, 7, 8, 255, 256]) {
    const step = size > 8 ? 17 : 1;
    for (let newIdx = 0; newIdx < size; newIdx += step) {
      for (const newWrap of [0, 1]) {
        for (let advanced = 0; advanced <= size; advanced += size > 8 ? 13 : 1) {
          for (let off = 0; off < size; off += step) {
            for (const wrap of [0, 1]) {
              const offWrap = off | (wrap << 15);
              assert.is(
                packedNeedEvent(offWrap, newIdx, newWrap, advanced, size),
                packedPassed(off, wrap, newIdx, newWrap, advanced, size),
                `size=${size} new=${newIdx}/${newWrap} advanced=${advanced} event=${off}/${wrap}`,
              );
              checked++;
            }
          }
        }
      }
    }
  }
  assert.ok(checked > 1000);
});

test('packed DESC event at the largest ring size', () => {
  const size = 32768;
  // Moved from 32760 (wrap 1) across the end to 8 (wrap 0): 16 slots.
  assert.ok(packedNeedEvent(32765 | (1 << 15), 8, 0, 16, size));
  assert.ok(packedNeedEvent(3 | (0 << 15), 8, 0, 16, size));
  assert.not.ok(packedNeedEvent(8 | (0 << 15), 8, 0, 16, size));
  assert.not.ok(packedNeedEvent(32759 | (1 << 15), 8, 0, 16, size));
  assert.not.ok(packedNeedEvent(3 | (1 << 15), 8, 0, 16, size), 'slot 3 of the previous lap was passed long ago');
});

test.run();
