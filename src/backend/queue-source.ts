// How a thread other than the backend's owner opens a queue pair's backend
// queue: a plain, structured-cloneable description crosses to the I/O
// thread, and the thread builds the queue from it there. Every backend the
// device can use has a kind here, so the I/O threads service any of them
// without knowing one from another.
import { AfXdpQueue } from './af-xdp/af-xdp-queue';
import { XskSocket, type XskSocketHandle } from './af-xdp/xsk-socket';
import { LoopbackQueue, type LoopbackOptions } from './loopback/loopback-queue';
import type { NetBackendQueue } from './net-backend';

export type BackendQueueSource =
  /** An AF_XDP socket the main thread opened and keeps open while the thread runs: its rings and UMEM, mapped again. */
  | { kind: 'af-xdp'; socket: XskSocketHandle }
  /** A loopback queue of the thread's own (transmitted frames come back as received ones). */
  | ({ kind: 'loopback' } & LoopbackOptions);

/** A source's mappings, made as soon as the thread has it (the queue itself may wait for the first session). */
export interface PreparedBackendQueue {
  /** Builds the queue (an AF_XDP queue primes its Fill ring here: call once per socket). */
  open(): NetBackendQueue;
}

export function prepareBackendQueue(source: BackendQueueSource): PreparedBackendQueue {
  switch (source.kind) {
    case 'af-xdp': {
      const socket = XskSocket.fromHandle(source.socket);
      return { open: () => new AfXdpQueue(socket) };
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
