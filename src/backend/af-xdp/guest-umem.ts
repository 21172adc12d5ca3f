// Guest RAM as the UMEM (guest-umem=auto|on): one registration of the whole
// area (guest RAM, then VMM-only bounce frames) on queue 0's socket, in
// unaligned-chunk mode; the other queues bind with XDP_SHARED_UMEM and have
// their own Fill and Completion rings (af_xdp.rst "XDP_SHARED_UMEM bind
// flag"). Registration pins the whole area (it becomes resident and counts
// against RLIMIT_MEMLOCK); where the kernel refuses it, auto falls back to
// the copy path with one message.
import { sys } from '../../native/sys';
import { xsk, type NativeError } from '../../native/xsk';
import { GUEST_UMEM_CHUNK, GUEST_UMEM_HEADROOM, GuestUmemQueue } from './guest-umem-queue';
import { XskSocket, type CopyMode, type ExternalUmem, type XskSocketConfig } from './xsk-socket';

/** Memory the VMM offers as the UMEM: guest RAM in its first `guestLength` bytes, bounce frames after. */
export interface GuestUmemArea {
  buffer: ArrayBuffer;
  guestLength: number;
  hugePages: boolean;
  /** Where this backend's bounce frames start (default guestLength): several backends over one RAM each have their own. */
  bounceStart?: number;
}

/** Bounce frames per queue for rings of `ringSize`: a full Tx ring and a full Fill ring of them. */
export function bounceFramesPerQueue(ringSize: number): number {
  return 2 * ringSize;
}

/** Bytes to map after guest RAM for `queues` queues (page multiple). */
export function guestUmemTailBytes(queues: number, ringSize: number): number {
  return queues * bounceFramesPerQueue(ringSize) * GUEST_UMEM_CHUNK;
}

/** Where queue `q`'s bounce frames are in the area, and how many (what an I/O thread needs to service it). */
export function guestUmemBounce(area: GuestUmemArea, q: number, ringSize: number): { bounceStart: number; bounceCount: number } {
  const bounceCount = bounceFramesPerQueue(ringSize);
  return { bounceStart: (area.bounceStart ?? area.guestLength) + q * bounceCount * GUEST_UMEM_CHUNK, bounceCount };
}

/** Registration pins the whole area: a refusal for locked memory names the sizes involved. */
function setupMessage(e: NativeError, area: GuestUmemArea): string {
  if (!/\b(ENOMEM|ENOBUFS|EPERM)\b/.test(e.message)) return e.message;
  const mib = (b: number): string => `${Math.ceil(b / (1 << 20))} MiB`;
  return (
    `registering guest RAM as the UMEM pins all of it (${mib(area.buffer.byteLength)}: ${mib(area.guestLength)} of guest RAM and the bounce frames) ` +
    `and RLIMIT_MEMLOCK is ${memlockText()}: raise it (ulimit -l, or LimitMEMLOCK= in systemd) or use guest-umem=off (${e.message})`
  );
}

function memlockText(): string {
  const { soft } = sys.memlockLimit();
  return soft < 0 ? 'unlimited' : `${Math.floor(soft / (1 << 20))} MiB`;
}

export interface GuestUmemOpen {
  area: GuestUmemArea;
  ifname: string;
  ifindex: number;
  startQueue: number;
  queues: number;
  ringSize: number;
  copyMode: CopyMode;
  /** Handed-in fds (sock-fds), in queue order. */
  fds?: number[];
  /** Publishes a (re)bound socket for its queue (XSKMAP, pinned map). */
  publish(queue: number, fd: number): void;
}

export class GuestUmemSetupError extends Error {}

/** Opens every queue's socket over the area; throws GuestUmemSetupError (nothing left open) when the kernel refuses. */
export function openGuestUmemQueues(o: GuestUmemOpen): { sockets: XskSocket[]; queues: GuestUmemQueue[]; release(): void } {
  const { area } = o;
  if (area.buffer.byteLength < (area.bounceStart ?? area.guestLength) + guestUmemTailBytes(o.queues, o.ringSize))
    throw new GuestUmemSetupError('the guest RAM mapping has no room for the bounce frames');
  const umem = (sharedWith?: number): ExternalUmem => ({
    buffer: area.buffer,
    chunkSize: GUEST_UMEM_CHUNK,
    headroom: GUEST_UMEM_HEADROOM,
    flags: xsk.constants.XDP_UMEM_UNALIGNED_CHUNK_FLAG,
    ...(sharedWith !== undefined ? { sharedWith } : {}),
  });
  const config = (q: number, fd?: number): XskSocketConfig => ({
    ifname: o.ifname,
    ifindex: o.ifindex,
    queueId: o.startQueue + q,
    frameSize: GUEST_UMEM_CHUNK,
    frameCount: Math.floor(area.buffer.byteLength / GUEST_UMEM_CHUNK),
    fillSize: o.ringSize,
    completionSize: o.ringSize,
    rxSize: o.ringSize,
    txSize: o.ringSize,
    copyMode: o.copyMode,
    ...(fd !== undefined ? { fd } : {}),
  });
  // A reset rebinds from the thread that opened (its network namespace holds the interface).
  const netns = sys.netnsOpen('/proc/thread-self/ns/net');
  const sockets: XskSocket[] = [];
  const queues: GuestUmemQueue[] = [];
  const reopen = (q: number, old: XskSocket): XskSocket => {
    const here = sys.netnsOpen('/proc/thread-self/ns/net');
    try {
      sys.netnsEnter(netns);
      const other = sockets.find((s, i) => i !== q && s !== old);
      const s = XskSocket.open(config(q), umem(other?.fd));
      sockets[q] = s;
      o.publish(q, s.fd);
      return s;
    } finally {
      sys.netnsEnter(here);
      sys.close(here);
    }
  };
  try {
    for (let q = 0; q < o.queues; q++) {
      let s: XskSocket;
      try {
        s = XskSocket.open(config(q, o.fds?.[q]), umem(q === 0 ? undefined : sockets[0]!.fd));
      } catch (e) {
        throw new GuestUmemSetupError(setupMessage(e as NativeError, area));
      }
      sockets.push(s);
      o.publish(q, s.fd);
      queues.push(
        new GuestUmemQueue({
          socket: s,
          guestLength: area.guestLength,
          ...guestUmemBounce(area, q, o.ringSize),
          hugePages: area.hugePages,
          reopen: (old) => reopen(q, old),
        }),
      );
    }
  } catch (e) {
    for (const s of sockets) s.close();
    sys.close(netns);
    throw e;
  }
  return { sockets, queues, release: () => sys.close(netns) };
}
