// Typed view of native/xsk: AF_XDP sockets, UMEM registration and ring
// mappings, bpf(2), interface index and XDP query (fds, mappings and copies
// are in ./sys, the raw C baseline in ./raw-loop). Errors thrown by it carry
// `code` (the errno name) and `syscall`.
import { loadAddon } from './load';
import type { NativeError as SysNativeError } from './sys';

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
  /** The interface's MTU (IFLA_MTU). */
  mtu: number;
}

export interface XskStatistics {
  rxDropped: number;
  rxInvalidDescs: number;
  txInvalidDescs: number;
  rxRingFull: number;
  rxFillRingEmpty: number;
  txRingEmpty: number;
}

export interface BpfMapInfo {
  type: number;
  id: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
  name: string;
}

export interface BpfLinkInfo {
  type: number;
  id: number;
  progId: number;
  /** The interface of an XDP link; 0 for other kinds. */
  ifindex: number;
}

export interface RawRing {
  buffer: ArrayBuffer;
  offsets: RingOffsets;
  size: number;
}

export interface XskAddon {
  socket(): number;
  socketDomain(fd: number): number;
  /** flags: xdp_umem_reg.flags (0, or XDP_UMEM_UNALIGNED_CHUNK_FLAG). */
  umemRegister(fd: number, umem: ArrayBuffer, frameSize: number, headroom: number, flags?: number): void;
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

  bpfMapCreate(type: number, keySize: number, valueSize: number, maxEntries: number, name: string): number;
  /** flags: BPF_ANY (0, default), BPF_NOEXIST (1), BPF_EXIST (2). */
  bpfMapUpdate(fd: number, key: Uint8Array, value: Uint8Array, flags?: number): void;
  bpfMapLookup(fd: number, key: Uint8Array, value: Uint8Array): boolean;
  bpfMapDelete(fd: number, key: Uint8Array): boolean;
  /** progFlags: bpf_attr.prog_flags (BPF_F_XDP_HAS_FRAGS). */
  bpfProgLoad(type: number, instructions: Uint8Array, license: string, name: string, expectedAttachType: number, progFlags?: number): number;
  bpfLinkCreate(progFd: number, ifindex: number, attachType: number, flags: number): number;
  /**
   * Loads an XDP program and links it to `ifindex` with the first of `flags` that works, on the thread pool
   * (the verifier and the driver's RCU waits take tens of ms). Rejects as bpfProgLoad / bpfLinkCreate throw.
   */
  xdpAttachAsync(
    instructions: Uint8Array,
    license: string,
    name: string,
    ifindex: number,
    flags: readonly number[],
    progFlags?: number,
  ): Promise<{ progFd: number; linkFd: number; flags: number }>;
  bpfProgId(progFd: number): number;
  bpfObjPin(fd: number, path: string): void;
  /** fileFlags: 0 read-write, BPF_F_RDONLY (1 << 3), BPF_F_WRONLY (1 << 4). */
  bpfObjGet(path: string, fileFlags: number): number;
  /** Only for an fd known to be a map (see bpfObjectKind). */
  bpfMapInfo(mapFd: number): BpfMapInfo;
  /** Only for an fd known to be a link. */
  bpfLinkInfo(linkFd: number): BpfLinkInfo;
  xdpQuery(ifindex: number): XdpAttachState;
  /** if_nametoindex in this thread's netns: 0 if there is no such interface. */
  ifNameToIndex(name: string): number;

  readonly constants: {
    AF_XDP: number;
    XDP_SHARED_UMEM: number;
    XDP_COPY: number;
    XDP_ZEROCOPY: number;
    XDP_USE_NEED_WAKEUP: number;
    XDP_RING_NEED_WAKEUP: number;
    XDP_PACKET_HEADROOM: number;
    XDP_UMEM_UNALIGNED_CHUNK_FLAG: number;
    /** Bind flag: the socket takes packets of several descriptors (multi-buffer, Linux >= 6.6). */
    XDP_USE_SG: number;
    /** xdp_desc.options bit: the packet continues in the next descriptor. */
    XDP_PKT_CONTD: number;
    POLLIN: number;
    POLLOUT: number;
    POLLERR: number;
  };
}

export const xsk: XskAddon = loadAddon<XskAddon>('xsk');

/** An errno-carrying error from the addon; bpfProgLoad adds the verifier's log. */
export interface NativeError extends SysNativeError {
  verifierLog?: string;
}
