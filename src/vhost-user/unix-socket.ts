// AF_UNIX stream sockets with SCM_RIGHTS fd passing, and the fd helpers a
// vhost-user back end needs (native/sys/unix_socket.cc). Every fd these
// functions return is close-on-exec and owned by the caller.
import { sys, type UnixSocketAddon } from '../native/sys';

export type { FdInfo, RecvResult, UnixSocketAddon } from '../native/sys';

export const unixSocket: UnixSocketAddon = sys;

/** fcntl seals (linux/fcntl.h). */
export const enum Seal {
  Seal = 0x1,
  Shrink = 0x2,
  Grow = 0x4,
  Write = 0x8,
}
