// What the front end told us about one vring (SET_VRING_NUM/ADDR/BASE/
// KICK/CALL/ERR/ENABLE) and the ring state machine of vhost-user.rst "Ring
// states": stopped until SET_VRING_KICK (the kick fd is the start signal, as
// QEMU, DPDK and libvhost-user implement it), stopped again by
// GET_VRING_BASE; enabled/disabled tracked independently of that (enabled
// at once when VHOST_USER_F_PROTOCOL_FEATURES is not negotiated). The ring
// owns its eventfds: a replaced or released fd is closed here, after the
// caller has stopped any worker that used it.
import { sys } from '../native/sys';

/** Addresses as the front end gave them: its own user addresses. */
export interface VringUserAddresses {
  desc: bigint;
  avail: bigint;
  used: bigint;
}

function closeFd(fd: number): void {
  if (fd < 0) return;
  try {
    sys.close(fd);
  } catch {
    // Already closed.
  }
}

export class Vring {
  /** Queue size (SET_VRING_NUM); 0 until set. */
  num = 0;
  addresses: VringUserAddresses | undefined;
  /** Next avail index to process (split rings: a u16), from SET_VRING_BASE or where the ring last stopped. */
  base = 0;
  /** SET_VRING_KICK fd; -1 with `polled` when the front end asked for polling, -1 before any. */
  kickFd = -1;
  polled = false;
  callFd = -1;
  errFd = -1;
  started = false;
  enabled = false;

  constructor(readonly index: number) {}

  /** Whether the ring is fully described and may be processed (a pair runs when both of its rings are). */
  get ready(): boolean {
    return this.started && this.enabled && this.num > 0 && this.addresses !== undefined;
  }

  /** SET_VRING_KICK: an eventfd, or -1 for "poll instead" (bit 8); either way the ring starts. */
  setKick(fd: number): void {
    closeFd(this.kickFd);
    this.kickFd = fd;
    this.polled = fd < 0;
    this.started = true;
  }

  setCall(fd: number): void {
    closeFd(this.callFd);
    this.callFd = fd;
  }

  setErr(fd: number): void {
    closeFd(this.errFd);
    this.errFd = fd;
  }

  /**
   * GET_VRING_BASE: the ring stops; like libvhost-user and DPDK, forget its
   * kick and call fds (the front end sends new ones before restarting it).
   */
  stop(): void {
    closeFd(this.kickFd);
    this.kickFd = -1;
    this.polled = false;
    this.started = false;
    this.setCall(-1);
  }

  /** Back to the initial state (RESET_DEVICE, end of connection): stopped, disabled, fds closed. */
  reset(): void {
    this.stop();
    this.setErr(-1);
    this.enabled = false;
    this.num = 0;
    this.addresses = undefined;
    this.base = 0;
  }
}
