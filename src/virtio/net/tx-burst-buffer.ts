// Which available buffers a transmit burst takes (Virtqueue.peekBurst): the
// usual frame, header and frame in one device-readable descriptor. Anything
// else stops the burst and is pop()'s, which judges it.
import { NetHdr } from 'virtio-spec-types';
import { BURST_LEN, BURST_STRIDE, BURST_WRITABLE } from '../queue';

// Module constants: the package's exports are getters.
const HDR_SIZE = NetHdr.SIZE;
const ETH_HLEN = 14;

/**
 * Buffer `m` of a burst's words: the 12-byte header and at least an Ethernet header, no longer than `limit`
 * (header included: the MTU and one backend buffer), readable (a device-writable one has nothing to send).
 * A runt or one over the limit goes by pop(), which drops and counts it.
 */
export function isBurstTxBuffer(words: Uint32Array, m: number, limit: number): boolean {
  const w = m * BURST_STRIDE;
  const len = words[w + BURST_LEN]!;
  return len >= HDR_SIZE + ETH_HLEN && len <= limit && words[w + BURST_WRITABLE] === 0;
}
