// epoll: the one place an I/O worker blocks. Each fd is registered with an
// int32 tag of the caller's choosing; wait() writes the ready tags into the
// caller's Int32Array and returns how many, allocating nothing.
import { EINTR, errnoError, sys } from '../native/sys';

export const enum EpollEvents {
  In = 0x001,
  Out = 0x004,
  Err = 0x008,
  Hup = 0x010,
  EdgeTriggered = 0x80000000,
}

const C = sys.constants;

export class Epoll {
  private closed = false;

  private constructor(readonly fd: number) {}

  static create(): Epoll {
    return new Epoll(sys.epollCreate());
  }

  add(fd: number, tag: number, events: number = EpollEvents.In): void {
    sys.epollCtl(this.fd, C.EPOLL_CTL_ADD, fd, events, tag);
  }

  delete(fd: number): void {
    sys.epollCtl(this.fd, C.EPOLL_CTL_DEL, fd, 0, 0);
  }

  /**
   * Blocks up to `timeoutMs` (-1: forever) and returns the number of ready
   * fds, their tags in tags[0..n) and, if given, their event masks in
   * events[0..n). At most tags.length (and at most 128) per call. A signal
   * (such as a kick) ends the wait early with 0.
   */
  wait(tags: Int32Array, timeoutMs: number, events?: Uint32Array): number {
    const n = sys.epollWait(this.fd, tags, timeoutMs, events);
    if (n >= 0) return n;
    if (n === -EINTR) return 0;
    throw errnoError(`epoll_wait(fd ${this.fd})`, -n);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    sys.close(this.fd);
  }
}
