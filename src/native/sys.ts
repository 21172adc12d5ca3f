// Typed view of native/sys: what sits below both KVM and AF_XDP. fds,
// eventfd and epoll (the I/O workers' doorbells and the one place they block),
// thread affinity, memory mappings handed to JS as ArrayBuffers (guest RAM
// among them), the registry of memory batched copies may touch, AF_UNIX
// sockets with SCM_RIGHTS fd passing (vhost-user), per-thread network
// namespaces and RLIMIT_MEMLOCK. Errors thrown by it carry `code` (the errno
// name), `errno` and `syscall`; calls documented as "-errno" return it instead.
import { constants as osConstants } from 'node:os';
import { loadAddon } from './load';

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
  /** MAP_SHARED | MAP_NORESERVE, not pre-faulted; offset page-aligned. Release with unmap. */
  mapSharedFd(fd: number, offset: number, length: number): ArrayBuffer;
  pageSize(): number;
  /** A connected AF_UNIX stream pair, both ends close-on-exec. */
  socketPair(): [number, number];
}

export type SysConstantName =
  | 'EFD_NONBLOCK' | 'EFD_SEMAPHORE'
  | 'EPOLL_CTL_ADD' | 'EPOLL_CTL_MOD' | 'EPOLL_CTL_DEL' | 'EPOLLIN' | 'EPOLLOUT' | 'EPOLLERR' | 'EPOLLHUP' | 'EPOLLET';

export interface SysAddon extends UnixSocketAddon {
  // Mappings (native/common/mapping.cc): explicit lifetime, unmap detaches.
  /** Populated private memory of 4 KiB pages, transparent huge pages (best effort) or reserved huge pages (mapping.cc). */
  mapAnonymous(length: number, pages: 'base' | 'thp' | 'hugetlb'): ArrayBuffer;
  mapFd(fd: number, offset: number, length: number): ArrayBuffer;
  unmap(buffer: ArrayBuffer): void;
  addressOf(buffer: ArrayBuffer): bigint;
  alias(address: bigint, length: number): ArrayBuffer;

  // Guest RAM: lazily populated; the memfd form can be shared with another process.
  guestMemory(size: number, hugepages?: boolean): ArrayBuffer;
  guestMemoryMemfd(size: number, hugepages?: boolean, name?: string): { fd: number; buffer: ArrayBuffer };

  /** Allows batched copies into/out of this memory; returns its address. Idempotent. */
  copyRegister(buffer: ArrayBuffer): number;
  copyUnregister(buffer: ArrayBuffer): void;
  /** ops: [dstAddress, srcAddress, length] * n, every range inside registered memory. */
  copyBatch(ops: Float64Array, n: number): void;

  // fds. close(-1) does nothing.
  close(fd: number): void;
  fdIsOpen(fd: number): boolean;
  dup(fd: number): number;
  setCloexec(fd: number, on: boolean): void;

  // Per-thread network namespace, locked-memory limit (-1: unlimited).
  netnsOpen(path: string): number;
  netnsEnter(fd: number): void;
  memlockLimit(): { soft: number; hard: number };
  setMemlockLimit(soft: number, hard: number): void;

  /** Pins the calling thread (or thread/process `tid`) to these host CPUs: 0 or -errno. */
  setThreadAffinity(cpus: readonly number[], tid?: number): number;

  // eventfd: read -> count or -errno, write -> 0 or -errno.
  eventfdCreate(initval?: number, flags?: number): number;
  eventfdRead(fd: number): number;
  eventfdWrite(fd: number, value?: number): number;

  // epoll: wait -> count or -errno.
  epollCreate(): number;
  epollCtl(epfd: number, op: number, fd: number, events: number, tag: number): void;
  epollWait(epfd: number, tags: Int32Array, timeoutMs: number, events?: Uint32Array): number;

  /**
   * The call relay's native thread: blocks in epoll on `epfd`, drains each eventfd that fires (its tag is its
   * fd) and calls `onFired` with their tags on this thread; ends when `stopTag` fires. It keeps the event loop
   * alive until then.
   */
  callRelayStart(epfd: number, stopTag: number, onFired: (tags: number[]) => void): CallRelayHandle;
  /** Waits for a relay thread to end (fire its stop tag first). */
  callRelayJoin(handle: CallRelayHandle): void;

  readonly constants: Readonly<Record<SysConstantName, number>>;
}

/** An opaque native handle (a thread). */
export type CallRelayHandle = { readonly __callRelay: unique symbol };

export const sys: SysAddon = loadAddon<SysAddon>('sys');

/** An errno-carrying error, thrown by an addon or made by errnoError(). */
export interface NativeError extends Error {
  code?: string;
  errno?: number;
  syscall?: string;
}

const errnoNames = new Map<number, string>(Object.entries(osConstants.errno).map(([name, n]) => [n, name]));

/** The same shape of error the addons throw, for calls that return -errno. */
export function errnoError(syscall: string, errno: number): NativeError {
  const code = errnoNames.get(errno) ?? 'EUNKNOWN';
  const e: NativeError = new Error(`${syscall}: ${code} (errno ${errno})`);
  e.code = code;
  e.errno = errno;
  e.syscall = syscall;
  return e;
}

export const EINTR = osConstants.errno.EINTR;
export const EAGAIN = osConstants.errno.EAGAIN;
