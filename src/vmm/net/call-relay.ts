// With MSI-X off a virtio-pci device interrupts through INTx and the ISR
// register (§4.1.4.5), which only this thread can drive: an I/O worker's
// used-buffer signal is an eventfd write, and KVM cannot turn that into "set
// the ISR queue bit, raise the line" by itself. The relay watches the call
// eventfds of the queues that have no irqfd (a thread blocked in epoll) and
// hands each signal to the transport here, as QEMU does for vhost's guest
// notifiers without MSI-X. The thread is a native one (native/sys/call_relay.cc),
// not a worker_thread: a Node isolate's start-up took tens of ms of CPU from
// the boot, for a loop that only waits.
import { Epoll } from '../../host/epoll';
import { EventFd } from '../../host/eventfd';
import { sys, type CallRelayHandle } from '../../native/sys';

/** The stop eventfd's tag; a queue's tag is its call fd. */
const STOP_TAG = -1;

export class CallRelay {
  private readonly epoll = Epoll.create();
  private readonly stop = EventFd.create({ nonblock: true });
  private readonly thread: CallRelayHandle;
  /** fd -> queue index, for the fds being watched. */
  private readonly watched = new Map<number, number>();
  /**
   * fd -> queue index of every fd ever watched. A signal the thread drained
   * just before unwatch() still reaches the transport (which then raises it
   * as MSI-X if that is what changed): a spurious interrupt is harmless, a
   * lost one can stall the driver.
   */
  private readonly queueOf = new Map<number, number>();
  private closed = false;

  constructor(onSignal: (queueIndex: number) => void) {
    this.epoll.add(this.stop.fd, STOP_TAG);
    this.thread = sys.callRelayStart(this.epoll.fd, STOP_TAG, (fds) => {
      if (this.closed) return; // drained before the stop, delivered after close()
      for (const fd of fds) {
        const q = this.queueOf.get(fd);
        if (q !== undefined) onSignal(q);
      }
    });
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
    if (this.closed) return;
    this.closed = true;
    for (const fd of [...this.watched.keys()]) this.unwatch(fd);
    this.stop.write(1);
    // The thread ends at its next wake-up, which the stop eventfd just caused: a short, bounded join.
    sys.callRelayJoin(this.thread);
    this.epoll.close();
    this.stop.close();
  }
}
