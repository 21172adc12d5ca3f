// Typed view of native/xsk/unix_socket.cc: AF_UNIX stream sockets with
// SCM_RIGHTS fd passing, and the fd helpers a vhost-user back end needs.
// Every fd these functions return is close-on-exec and owned by the caller.
import { loadAddon } from '../native/load';

export interface RecvResult {
  bytes: Uint8Array;
  /** Descriptors that arrived with these bytes (SCM_RIGHTS). */
  fds: number[];
  /** The peer closed its end (no bytes). */
  eof: boolean;
  /** The wake fd became readable first (nothing was read). */
  woken: boolean;
}

export interface FdInfo {
  kind: 'file' | 'socket' | 'other';
  size: number;
  /** F_GET_SEALS, or -1 when the file cannot be sealed (not a memfd). */
  seals: number;
}

export interface UnixSocketAddon {
  unixListen(path: string, backlog: number): number;
  unixConnect(path: string): number;
  /** An accepted fd, or -errno (-EAGAIN when nobody is waiting). */
  unixAccept(listenFd: number): number;
  /** Waits (on the thread pool) for a connection: its fd, or -1 when wakeFd became readable. */
  unixAcceptAsync(listenFd: number, wakeFd: number): Promise<number>;
  /** One recvmsg after waiting up to timeoutMs (0: do not wait). Throws ETIMEDOUT / EAGAIN. */
  unixRecv(fd: number, maxBytes: number, maxFds: number, timeoutMs: number): RecvResult;
  /** Waits (on the thread pool) until fd is readable or wakeFd is, then one recvmsg. More than maxFds fds: rejected (EMSGSIZE), all closed. */
  unixRecvAsync(fd: number, maxBytes: number, maxFds: number, wakeFd: number): Promise<RecvResult>;
  /** Sends all bytes, the fds with the first, waiting at most timeoutMs for room. */
  unixSend(fd: number, bytes: Uint8Array, fds: readonly number[], timeoutMs: number): number;
  peerCredentials(fd: number): { pid: number; uid: number; gid: number };
  fdInfo(fd: number): FdInfo;
  fdAddSeals(fd: number, seals: number): boolean;
  fdSetNonBlocking(fd: number): void;
  /** MAP_SHARED | MAP_NORESERVE, not pre-faulted; offset page-aligned. Release with xsk.unmap. */
  mapSharedFd(fd: number, offset: number, length: number): ArrayBuffer;
  pageSize(): number;
}

export const unixSocket: UnixSocketAddon = loadAddon<UnixSocketAddon>('xsk');

/** fcntl seals (linux/fcntl.h). */
export const enum Seal {
  Seal = 0x1,
  Shrink = 0x2,
  Grow = 0x4,
  Write = 0x8,
}
