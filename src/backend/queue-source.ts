// How a thread other than the backend's owner opens a queue pair's backend
// queue: a plain, structured-cloneable description crosses to the I/O
// thread, and the thread builds the queue from it there. Every backend the
// device can use has a kind here, so the I/O threads service any of them
// without knowing one from another.
import { AfXdpQueue } from './af-xdp/af-xdp-queue';
import { GuestUmemQueue, type GuestUmemCounters } from './af-xdp/guest-umem-queue';
import { XskSocket, type XskSocketHandle } from './af-xdp/xsk-socket';
import { LoopbackQueue, type LoopbackOptions } from './loopback/loopback-queue';
import type { NetBackendQueue } from './net-backend';

export type BackendQueueSource =
  /** An AF_XDP socket the main thread opened and keeps open while the thread runs: its rings and UMEM, mapped again. */
  | { kind: 'af-xdp'; socket: XskSocketHandle }
  /**
   * An AF_XDP socket whose UMEM is guest RAM (guest-umem=on), opened and kept open by the main thread; the
   * thread maps the area again (the UMEM in the handle) and services it in place: guest frames go to the
   * kernel by address, frames it cannot carry through the queue's bounce frames at bounceStart.
   */
  | { kind: 'guest-umem'; socket: XskSocketHandle; guestLength: number; bounceStart: number; bounceCount: number; hugePages: boolean }
  /** A loopback queue of the thread's own (transmitted frames come back as received ones). */
  | ({ kind: 'loopback' } & LoopbackOptions);

/** A source's mappings, made as soon as the thread has it (the queue itself may wait for the first session). */
export interface PreparedBackendQueue {
  /** Builds the queue (an AF_XDP queue primes its Fill ring here: call once per socket). */
  open(): NetBackendQueue;
  /**
   * Device reset, first half (guest-umem): the queue forgets the guest buffers the kernel holds; true when
   * there were any, and the socket's owner must then close it and bind a fresh one (adopt). Absent: nothing to do.
   */
  release?(): boolean;
  /** Device reset, second half: the fresh socket the owner bound on the same queue and UMEM. */
  adopt?(socket: XskSocketHandle): void;
  /** guest-umem: the queue's own counters (frames in place, bounced, refused), once it is open. */
  guestUmemCounters?(): GuestUmemCounters | undefined;
}

export function prepareBackendQueue(source: BackendQueueSource): PreparedBackendQueue {
  switch (source.kind) {
    case 'af-xdp': {
      const socket = XskSocket.fromHandle(source.socket);
      return { open: () => new AfXdpQueue(socket) };
    }
    case 'guest-umem': {
      const { guestLength, bounceStart, bounceCount, hugePages } = source;
      const socket = XskSocket.fromHandle(source.socket);
      let queue: GuestUmemQueue | undefined;
      return {
        open: () =>
          (queue = new GuestUmemQueue({
            socket, guestLength, bounceStart, bounceCount, hugePages,
            // The main thread owns the socket: a reset here is release(), then the owner's rebind, then adopt().
            reopen: () => {
              throw new Error('guest-umem: the socket is rebound by its owner (release, then adopt)');
            },
          })),
        // Never opened: the kernel holds nothing of this queue's.
        release: () => queue?.release() ?? false,
        adopt: (h) => queue?.adopt(XskSocket.fromHandle(h)),
        guestUmemCounters: () => queue?.direct,
      };
    }
    case 'loopback': {
      const options: LoopbackOptions = {
        ...(source.slots !== undefined ? { slots: source.slots } : {}),
        ...(source.slotSize !== undefined ? { slotSize: source.slotSize } : {}),
      };
      return { open: () => new LoopbackQueue(options) };
    }
  }
}
