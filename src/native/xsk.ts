// Typed view of native/xsk: thin syscall and memory wrappers. Errors thrown
// by it carry `code` (the errno name) and `syscall`.
import { loadAddon } from './load';

export const enum RingId {
  Fill = 0,
  Completion = 1,
  Rx = 2,
  Tx = 3,
}

export interface RingOffsets {
  producer: number;
  consumer: number;
  desc: number;
  flags: number;
}

export interface MmapOffsets {
  fill: RingOffsets;
  completion: RingOffsets;
  rx: RingOffsets;
  tx: RingOffsets;
}

export interface XdpAttachState {
  /** 0 none, 1 driver (native), 2 generic (skb), 3 offloaded, 4 several. */
  attached: number;
  progId: number;
  drvProgId: number;
  skbProgId: number;
  hwProgId: number;
}

export interface XskStatistics {
  rxDropped: number;
  rxInvalidDescs: number;
  txInvalidDescs: number;
  rxRingFull: number;
  rxFillRingEmpty: number;
  txRingEmpty: number;
}

export interface RawRing {
  buffer: ArrayBuffer;
  offsets: RingOffsets;
  size: number;
}

export interface RawLoopParams {
  fd: number;
  umem: ArrayBuffer;
  frameSize: number;
  mode: 'tx' | 'rx';
  batch: number;
  seconds: number;
  packet: Uint8Array;
  rings: { fill: RawRing; completion: RawRing; rx: RawRing; tx: RawRing };
}

export interface RawLoopResult {
  packets: number;
  bytes: number;
  kicks: number;
  seconds: number;
}

export interface XskAddon {
  mapAnonymous(length: number, hugepages?: boolean): ArrayBuffer;
  mapFd(fd: number, offset: number, length: number): ArrayBuffer;
  unmap(buffer: ArrayBuffer): void;
  addressOf(buffer: ArrayBuffer): bigint;
  alias(address: bigint, length: number): ArrayBuffer;

  socket(): number;
  socketDomain(fd: number): number;
  umemRegister(fd: number, umem: ArrayBuffer, frameSize: number, headroom: number): void;
  setRingSize(fd: number, ring: RingId, entries: number): void;
  /** XDP_MAX_TX_SKB_BUDGET: 0 or -errno (-ENOPROTOOPT before Linux 6.17). */
  setTxBudget(fd: number, frames: number): number;
  mmapOffsets(fd: number): MmapOffsets;
  mapRing(fd: number, ring: RingId, bytes: number): ArrayBuffer;
  bind(fd: number, ifindex: number, queueId: number, flags: number, sharedUmemFd?: number): void;
  kickTx(fd: number): number;
  kickRx(fd: number): number;
  poll(fd: number, events: number, timeoutMs: number): number;
  statistics(fd: number): XskStatistics;
  isZeroCopy(fd: number): boolean;
  close(fd: number): void;

  bpfMapCreate(type: number, keySize: number, valueSize: number, maxEntries: number, name: string): number;
  bpfMapUpdate(fd: number, key: Uint8Array, value: Uint8Array): void;
  bpfMapLookup(fd: number, key: Uint8Array, value: Uint8Array): boolean;
  bpfMapDelete(fd: number, key: Uint8Array): boolean;
  bpfProgLoad(type: number, instructions: Uint8Array, license: string, name: string, expectedAttachType: number): number;
  bpfLinkCreate(progFd: number, ifindex: number, attachType: number, flags: number): number;
  bpfProgId(progFd: number): number;
  xdpQuery(ifindex: number): XdpAttachState;

  ifNameToIndex(name: string): number;
  netnsOpen(path: string): number;
  netnsEnter(fd: number): void;
  memlockLimit(): { soft: number; hard: number };
  setMemlockLimit(soft: number, hard: number): void;
  fdIsOpen(fd: number): boolean;
  dup(fd: number): number;
  setCloexec(fd: number, on: boolean): void;

  rawLoop(params: RawLoopParams): RawLoopResult;

  /** Allows batched copies into/out of this memory; returns its address. Idempotent. */
  copyRegister(buffer: ArrayBuffer): number;
  copyUnregister(buffer: ArrayBuffer): void;
  /** ops: [dstAddress, srcAddress, length] * n, every range inside registered memory. */
  copyBatch(ops: Float64Array, n: number): void;

  readonly constants: {
    AF_XDP: number;
    XDP_SHARED_UMEM: number;
    XDP_COPY: number;
    XDP_ZEROCOPY: number;
    XDP_USE_NEED_WAKEUP: number;
    XDP_RING_NEED_WAKEUP: number;
    XDP_PACKET_HEADROOM: number;
    POLLIN: number;
    POLLOUT: number;
    POLLERR: number;
  };
}

export const xsk: XskAddon = loadAddon<XskAddon>('xsk');

/** An errno-carrying error from the addon. */
export interface NativeError extends Error {
  code?: string;
  errno?: number;
  syscall?: string;
  verifierLog?: string;
}
