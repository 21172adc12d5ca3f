// eventfd: a counter the kernel can signal (ioeventfd) or be signalled
// through (irqfd), and that epoll can wait on.
import { EAGAIN, errnoError, sys } from '../native/sys';

export interface EventFdOptions {
  initval?: number;
  /** Reads return 0 instead of blocking when the counter is zero. */
  nonblock?: boolean;
  /** Each read takes 1 from the counter instead of all of it. */
  semaphore?: boolean;
}

export class EventFd {
  private closed = false;

  private constructor(readonly fd: number) {}

  static create(opts: EventFdOptions = {}): EventFd {
    const c = sys.constants;
    const flags = (opts.nonblock ? c.EFD_NONBLOCK : 0) | (opts.semaphore ? c.EFD_SEMAPHORE : 0);
    return new EventFd(sys.eventfdCreate(opts.initval ?? 0, flags));
  }

  /** Adds `value` to the counter. Returns false if it would overflow a non-blocking eventfd. */
  write(value = 1): boolean {
    const r = sys.eventfdWrite(this.fd, value);
    if (r === 0) return true;
    if (r === -EAGAIN) return false;
    throw errnoError(`write(eventfd ${this.fd})`, -r);
  }

  /** Takes the counter (0 when a non-blocking eventfd has nothing). No allocation. */
  read(): number {
    const r = sys.eventfdRead(this.fd);
    if (r >= 0) return r;
    if (r === -EAGAIN) return 0;
    throw errnoError(`read(eventfd ${this.fd})`, -r);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    sys.close(this.fd);
  }
}
