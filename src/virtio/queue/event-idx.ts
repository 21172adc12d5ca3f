// Notification suppression arithmetic (VIRTIO_F_EVENT_IDX). Pure functions
// over 16-bit ring indices so both sides of a ring (the device here, the test
// drivers in src/fuzz) use the same math.

/**
 * §2.7.7 / §2.7.10 `vring_need_event`: after moving an index from `oldIdx` to
 * `newIdx`, whether the other side asked (with `event`) to be notified, i.e.
 * whether `event` lies in [oldIdx, newIdx) modulo 2^16.
 */
export function vringNeedEvent(event: number, newIdx: number, oldIdx: number): boolean {
  return ((newIdx - event - 1) & 0xffff) < ((newIdx - oldIdx) & 0xffff);
}

/**
 * §2.8.10 packed rings, RING_EVENT_FLAGS_DESC: the other side wants a
 * notification once the descriptor at offset/wrap `offWrap` (bit 15 = wrap
 * counter) has been made available / used. The index moved `advanced` slots
 * (at most `size`) and now stands at `newIdx` with wrap counter `newWrap`.
 * An event offset from the previous lap is taken as `offset - size` so the
 * window test works across the ring end.
 */
export function packedNeedEvent(offWrap: number, newIdx: number, newWrap: number, advanced: number, size: number): boolean {
  let off = offWrap & 0x7fff;
  if (offWrap >>> 15 !== newWrap) off -= size;
  return ((newIdx - off - 1) & 0xffff) < advanced;
}
