// With MSI-X off a virtio-pci device interrupts through INTx and the ISR
// register (§4.1.4.5), which only this thread can drive: an I/O worker's
// used-buffer signal is an eventfd write, and KVM cannot turn that into "set
// the ISR queue bit, raise the line" by itself. The relay watches the call
// eventfds of the queues that have no irqfd (a thread blocked in epoll) and
// hands each signal to the transport here, as QEMU does for vhost's guest
// notifiers without MSI-X.
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { Epoll } from '../../host/epoll';
import { EventFd } from '../../host/eventfd';

const WORKER = path.join(__dirname, 'call-relay-worker.js');

export interface CallRelayWorkerData {
  epollFd: number;
  stopFd: number;
}

/** Posted by the worker: the tags of the eventfds it found signalled (and drained). */
export type CallRelayMessage = readonly number[];

export class CallRelay {
  private readonly epoll = Epoll.create();
  private readonly stop = EventFd.create({ nonblock: true });
  private readonly worker: Worker;
  /** fd -> queue index, for the fds being watched. */
  private readonly watched = new Map<number, number>();
  /**
   * fd -> queue index of every fd ever watched. A signal the thread drained
   * just before unwatch() still reaches the transport (which then raises it
   * as MSI-X if that is what changed): a spurious interrupt is harmless, a
   * lost one can stall the driver.
   */
  private readonly queueOf = new Map<number, number>();
  private readonly exited: Promise<void>;

  constructor(onSignal: (queueIndex: number) => void) {
    // Tag -1 is the stop eventfd; a queue's tag is its call fd.
    this.epoll.add(this.stop.fd, -1);
    const data: CallRelayWorkerData = { epollFd: this.epoll.fd, stopFd: this.stop.fd };
    // Kept referenced: close() waits for the thread, and an unreferenced one would let the process end first.
    this.worker = new Worker(WORKER, { workerData: data });
    this.worker.on('message', (fds: CallRelayMessage) => {
      for (const fd of fds) {
        const q = this.queueOf.get(fd);
        if (q !== undefined) onSignal(q);
      }
    });
    this.exited = new Promise((resolve) => this.worker.once('exit', () => resolve()));
  }

  /** Relays `fd` (non-blocking eventfd) as queue `queueIndex`'s used-buffer signal until unwatch(). */
  watch(fd: number, queueIndex: number): void {
    if (this.watched.has(fd)) return;
    this.watched.set(fd, queueIndex);
    this.queueOf.set(fd, queueIndex);
    this.epoll.add(fd, fd);
  }

  unwatch(fd: number): void {
    if (!this.watched.delete(fd)) return;
    this.epoll.delete(fd);
  }

  isWatched(fd: number): boolean {
    return this.watched.has(fd);
  }

  async close(): Promise<void> {
    for (const fd of [...this.watched.keys()]) this.unwatch(fd);
    this.stop.write(1);
    await this.exited;
    this.epoll.close();
    this.stop.close();
  }
}
