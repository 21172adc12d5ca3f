// Guest RAM: one shared mapping, anonymous or memfd-backed (the memfd is
// what vhost-user hands to the other side). Every thread sees it as an
// ArrayBuffer over the same pages; workers re-wrap it with aliasGuestRam().
import { sys } from '../native/sys';

export interface GuestRamOptions {
  /** Back with 2 MiB huge pages (size must be a multiple of 2 MiB; pages must be reserved). */
  hugepages?: boolean;
  /** Back with a memfd (name shown in /proc/PID/fd); its fd is then `fd`. */
  memfd?: boolean | string;
}

export class GuestRam {
  readonly bytes: Uint8Array;
  private released = false;

  private constructor(
    readonly buffer: ArrayBuffer,
    /** The memfd, or -1 for anonymous memory. */
    readonly fd: number,
    private readonly owner: boolean,
  ) {
    this.bytes = new Uint8Array(buffer);
  }

  static allocate(size: number, opts: GuestRamOptions = {}): GuestRam {
    const huge = opts.hugepages === true;
    if (opts.memfd !== undefined && opts.memfd !== false) {
      const name = typeof opts.memfd === 'string' ? opts.memfd : 'xdpvm-guest-ram';
      const m = sys.guestMemoryMemfd(size, huge, name);
      return new GuestRam(m.buffer, m.fd, true);
    }
    return new GuestRam(sys.guestMemory(size, huge), -1, true);
  }

  /** The same pages seen from another worker thread (never released through it). */
  static alias(handle: GuestRamHandle): GuestRam {
    return new GuestRam(sys.alias(handle.address, handle.size), handle.fd, false);
  }

  get size(): number {
    return this.buffer.byteLength;
  }

  /** What a worker needs to alias this memory (structured-clone safe). */
  handle(): GuestRamHandle {
    return { address: sys.addressOf(this.buffer), size: this.buffer.byteLength, fd: this.fd };
  }

  /** Unmaps (detaching this thread's views) and closes the memfd. Workers' aliases must be gone first. */
  release(): void {
    if (!this.owner || this.released) return;
    this.released = true;
    sys.unmap(this.buffer);
    if (this.fd >= 0) sys.close(this.fd);
  }
}

export interface GuestRamHandle {
  address: bigint;
  size: number;
  fd: number;
}
