// One AF_XDP socket with its own UMEM and four rings, set up by syscalls and
// bound to (interface, queue). Servicing the rings is AfXdpQueue's job.
import { RingId, xsk, type NativeError, type RawRing, type RingOffsets } from '../../native/xsk';
import { sys } from '../../native/sys';
import { bootMappingPages } from '../../host/free-page-reporting';
import type { MultiBufferMode } from './af-xdp-options';
import { ConsumerRing, ProducerRing } from './xsk-ring';

export type CopyMode = 'default' | 'copy' | 'zero-copy';

export interface XskSocketConfig {
  ifname: string;
  ifindex: number;
  queueId: number;
  frameSize: number;
  frameCount: number;
  fillSize: number;
  completionSize: number;
  rxSize: number;
  txSize: number;
  copyMode: CopyMode;
  /** An already created, unbound AF_XDP socket handed in (sock-fds); owned from here on. */
  fd?: number;
  /** Bind with XDP_USE_SG (multi-buffer): auto (where the kernel takes it), on (or fail); off when absent. */
  multiBuffer?: MultiBufferMode;
  /** Tests: act as a kernel without multi-buffer (a bind with XDP_USE_SG is refused as before Linux 6.6, EINVAL). */
  simulateNoSg?: boolean;
}

// Ring sizes and UMEM size as QEMU chooses them: 2048-entry rings and enough
// 4 KiB frames for all four rings full at once ((fill + completion) * 2).
export const DEFAULT_RING_SIZE = 2048;
export const DEFAULT_FRAME_SIZE = 4096;
export const DEFAULT_FRAME_COUNT = (DEFAULT_RING_SIZE + DEFAULT_RING_SIZE) * 2;

/**
 * A UMEM this socket does not own (guest RAM as the UMEM, guest-umem.ts):
 * registered with `flags` (unaligned chunks), or shared with the socket that
 * registered it (XDP_SHARED_UMEM; this socket then has its own Fill and
 * Completion rings, bound to another queue). Never unmapped by close().
 */
export interface ExternalUmem {
  buffer: ArrayBuffer;
  chunkSize: number;
  headroom: number;
  flags: number;
  /** fd of a bound socket that registered `buffer`. */
  sharedWith?: number;
}

const ADDR_ENTRY = 8;
const DESC_ENTRY = 16;

/**
 * What another thread of this process needs to service a socket opened here:
 * the fd and where its UMEM and rings are mapped (structured-cloneable).
 */
export interface XskSocketHandle {
  config: XskSocketConfig;
  fd: number;
  zeroCopy: boolean;
  txPerSendto: number;
  /** Bound with XDP_USE_SG (absent: no). */
  sg?: boolean;
  umem: { address: bigint; length: number };
  rings: Record<'fill' | 'completion' | 'rx' | 'tx', { address: bigint; length: number; offsets: RingOffsets; size: number }>;
}

export class XskSocket {
  private closed = false;

  private constructor(
    readonly config: XskSocketConfig,
    readonly fd: number,
    readonly umem: ArrayBuffer,
    readonly fill: ProducerRing,
    readonly completion: ConsumerRing,
    readonly rx: ConsumerRing,
    readonly tx: ProducerRing,
    readonly zeroCopy: boolean,
    /** Tx descriptors one copy-mode sendto sends at most (the kernel's XDP_MAX_TX_SKB_BUDGET; see raiseTxPerSendto). */
    readonly txPerSendto: number,
    /** Bound with XDP_USE_SG: frames may span several descriptors both ways (XDP_PKT_CONTD). */
    readonly sg: boolean,
    /** False for a view from another thread: closing it releases nothing. */
    private readonly owner = true,
    /** False when the UMEM is external (guest RAM): close() leaves it mapped. */
    private readonly ownsUmem = true,
  ) {}

  /** Describes this socket for a worker thread (the owner keeps it open until the worker is done). */
  handle(): XskSocketHandle {
    const ring = (r: ProducerRing | ConsumerRing): XskSocketHandle['rings']['fill'] => ({
      address: sys.addressOf(r.buffer),
      length: r.buffer.byteLength,
      offsets: r.offsets,
      size: r.size,
    });
    return {
      config: this.config,
      fd: this.fd,
      zeroCopy: this.zeroCopy,
      txPerSendto: this.txPerSendto,
      sg: this.sg,
      umem: { address: sys.addressOf(this.umem), length: this.umem.byteLength },
      rings: { fill: ring(this.fill), completion: ring(this.completion), rx: ring(this.rx), tx: ring(this.tx) },
    };
  }

  /** The same socket seen from another thread, over the owner's mappings. */
  static fromHandle(h: XskSocketHandle): XskSocket {
    const buf = (r: { address: bigint; length: number }): ArrayBuffer => sys.alias(r.address, r.length);
    const { rings } = h;
    return new XskSocket(
      h.config,
      h.fd,
      buf(h.umem),
      new ProducerRing(buf(rings.fill), rings.fill.offsets, rings.fill.size, ADDR_ENTRY),
      new ConsumerRing(buf(rings.completion), rings.completion.offsets, rings.completion.size, ADDR_ENTRY),
      new ConsumerRing(buf(rings.rx), rings.rx.offsets, rings.rx.size, DESC_ENTRY),
      new ProducerRing(buf(rings.tx), rings.tx.offsets, rings.tx.size, DESC_ENTRY),
      h.zeroCopy,
      h.txPerSendto,
      h.sg ?? false,
      false,
    );
  }

  static open(config: XskSocketConfig, external?: ExternalUmem): XskSocket {
    const { frameSize, frameCount } = config;
    if (!external && (frameSize < 2048 || frameSize > 65536 || (frameSize & (frameSize - 1)) !== 0))
      throw new RangeError(`frame size ${frameSize} must be a power of two from 2048 to 65536`);
    const fd = config.fd ?? xsk.socket();
    const mapped: ArrayBuffer[] = [];
    try {
      const umem = external ? external.buffer : sys.mapAnonymous(frameSize * frameCount, bootMappingPages());
      if (!external) mapped.push(umem);
      try {
        if (external?.sharedWith === undefined) xsk.umemRegister(fd, umem, external?.chunkSize ?? frameSize, external?.headroom ?? 0, external?.flags ?? 0);
      } catch (e) {
        throw umemError(e as NativeError, config, umem.byteLength);
      }
      xsk.setRingSize(fd, RingId.Fill, config.fillSize);
      xsk.setRingSize(fd, RingId.Completion, config.completionSize);
      xsk.setRingSize(fd, RingId.Rx, config.rxSize);
      xsk.setRingSize(fd, RingId.Tx, config.txSize);
      const txPerSendto = raiseTxPerSendto(fd, config.txSize);
      const off = xsk.mmapOffsets(fd);
      const map = (id: RingId, o: { desc: number }, n: number, entry: number): ArrayBuffer => {
        const b = xsk.mapRing(fd, id, o.desc + n * entry);
        mapped.push(b);
        return b;
      };
      const fill = new ProducerRing(map(RingId.Fill, off.fill, config.fillSize, ADDR_ENTRY), off.fill, config.fillSize, ADDR_ENTRY);
      const comp = new ConsumerRing(
        map(RingId.Completion, off.completion, config.completionSize, ADDR_ENTRY),
        off.completion,
        config.completionSize,
        ADDR_ENTRY,
      );
      const rx = new ConsumerRing(map(RingId.Rx, off.rx, config.rxSize, DESC_ENTRY), off.rx, config.rxSize, DESC_ENTRY);
      const tx = new ProducerRing(map(RingId.Tx, off.tx, config.txSize, DESC_ENTRY), off.tx, config.txSize, DESC_ENTRY);
      const c = xsk.constants;
      const modeFlag = config.copyMode === 'copy' ? c.XDP_COPY : config.copyMode === 'zero-copy' ? c.XDP_ZEROCOPY : 0;
      const shared = external?.sharedWith;
      // A socket sharing a UMEM takes its mode and need_wakeup from the socket that registered it: xsk_bind
      // refuses XDP_SHARED_UMEM together with any other flag (EINVAL).
      let bound: BoundSg = { sg: false };
      if (shared !== undefined) bindWithRetry(fd, config, c.XDP_SHARED_UMEM, shared);
      else bound = bindMaybeSg(fd, config, modeFlag | c.XDP_USE_NEED_WAKEUP);
      const socket = new XskSocket(config, fd, umem, fill, comp, rx, tx, xsk.isZeroCopy(fd), txPerSendto, bound.sg, true, !external);
      socket.sgRefused = bound.refused;
      return socket;
    } catch (e) {
      for (const b of mapped.reverse()) sys.unmap(b);
      sys.close(fd);
      throw e;
    }
  }

  /** Why the bind went without XDP_USE_SG although multi-buffer was asked for (the kernel's errno), if it did. */
  sgRefused: string | undefined;

  /** The rings as the raw C baseline loop takes them. */
  rawRings(): { fill: RawRing; completion: RawRing; rx: RawRing; tx: RawRing } {
    const raw = (r: ProducerRing | ConsumerRing): RawRing => ({ buffer: r.buffer, offsets: r.offsets, size: r.size });
    return { fill: raw(this.fill), completion: raw(this.completion), rx: raw(this.rx), tx: raw(this.tx) };
  }

  /** Closes the socket (the kernel unbinds it and drops it from any XSKMAP) and unmaps everything. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (!this.owner) return;
    sys.close(this.fd);
    for (const b of [this.fill.buffer, this.completion.buffer, this.rx.buffer, this.tx.buffer]) sys.unmap(b);
    if (this.ownsUmem) sys.unmap(this.umem);
  }
}

/** Tx descriptors per copy-mode sendto when XDP_MAX_TX_SKB_BUDGET is absent or refused (the kernel's default). */
export const KERNEL_TX_PER_SENDTO = 32;

// Copy mode transmits only inside sendto, at most 32 descriptors per call by
// default. A syscall costs far more than the per-descriptor work, so one call
// may send the whole ring where the kernel allows it (XDP_MAX_TX_SKB_BUDGET,
// Linux >= 6.17). Older kernels keep 32; the Tx path kicks again on EAGAIN.
function raiseTxPerSendto(fd: number, txSize: number): number {
  if (txSize < KERNEL_TX_PER_SENDTO) return KERNEL_TX_PER_SENDTO;
  return xsk.setTxBudget(fd, txSize) === 0 ? txSize : KERNEL_TX_PER_SENDTO;
}

// A socket closed on this queue a moment ago still holds it until the kernel's
// deferred release runs (xp_release_deferred, a workqueue): retry EBUSY briefly.
const BIND_RETRY_MS = 1000;
const BIND_RETRY_STEP_MS = 10;
const sleeper = new Int32Array(new SharedArrayBuffer(4));

/** Binds, retrying EBUSY; throws the kernel's error as it is. */
function bindRetryingBusy(fd: number, config: XskSocketConfig, flags: number, sharedUmemFd?: number): void {
  for (let waited = 0; ; waited += BIND_RETRY_STEP_MS) {
    try {
      xsk.bind(fd, config.ifindex, config.queueId, flags, sharedUmemFd);
      return;
    } catch (e) {
      const err = e as NativeError;
      if (err.code !== 'EBUSY' || waited >= BIND_RETRY_MS) throw err;
      Atomics.wait(sleeper, 0, 0, BIND_RETRY_STEP_MS);
    }
  }
}

function bindWithRetry(fd: number, config: XskSocketConfig, flags: number, sharedUmemFd?: number): void {
  try {
    bindRetryingBusy(fd, config, flags, sharedUmemFd);
  } catch (e) {
    throw bindError(e as NativeError, config);
  }
}

/** How a socket was bound: with XDP_USE_SG, or without and (when it was asked for) the kernel's refusal. */
interface BoundSg {
  sg: boolean;
  refused?: string;
}

// af_xdp.rst "Multi-Buffer Support": XDP_USE_SG lets the kernel split a frame
// over several Rx descriptors and take Tx chains. A kernel before 6.6 refuses
// the unknown flag (EINVAL); a zero-copy driver without multi-buffer refuses
// it with EOPNOTSUPP. auto then binds as before; on fails. A failed bind
// leaves the socket unbound, so the second try starts clean.
function bindMaybeSg(fd: number, config: XskSocketConfig, flags: number): BoundSg {
  const want = config.multiBuffer ?? 'off';
  if (want === 'off') {
    bindWithRetry(fd, config, flags);
    return { sg: false };
  }
  let refused: string;
  try {
    if (config.simulateNoSg) refused = 'EINVAL';
    else {
      bindRetryingBusy(fd, config, flags | xsk.constants.XDP_USE_SG);
      return { sg: true };
    }
  } catch (e) {
    const err = e as NativeError;
    if (err.code !== 'EINVAL' && err.code !== 'EOPNOTSUPP') throw bindError(err, config);
    refused = err.code;
  }
  // Without SG: if this fails too, the refusal was not about SG, and its error says what it was.
  bindWithRetry(fd, config, flags);
  if (want === 'on') {
    throw new Error(
      `ifname=${config.ifname} queue ${config.queueId}: 'multi-buffer=on' but the kernel refuses XDP_USE_SG (${refused}; it needs Linux >= 6.6, ` +
        `and in zero-copy mode a driver with multi-buffer support): use multi-buffer=auto or off`,
    );
  }
  return { sg: false, refused };
}

function umemError(e: NativeError, config: XskSocketConfig, bytes: number): Error {
  if (e.code === 'ENOBUFS' || e.code === 'ENOMEM' || e.code === 'EPERM') {
    const mib = Math.ceil(bytes / (1 << 20));
    return new Error(
      `ifname=${config.ifname} queue ${config.queueId}: cannot lock the ${mib} MiB UMEM (${e.code}); ` +
        `RLIMIT_MEMLOCK is too small: raise it (ulimit -l, or LimitMEMLOCK= in systemd) by ${mib} MiB per queue`,
    );
  }
  return new Error(`ifname=${config.ifname} queue ${config.queueId}: UMEM registration failed: ${e.message}`);
}

function bindError(e: NativeError, config: XskSocketConfig): Error {
  const where = `ifname=${config.ifname} queue ${config.queueId}`;
  switch (e.code) {
    case 'EINVAL':
      return new Error(`${where}: bind failed: no such queue on the interface (check queues/start-queue) (${e.message})`);
    case 'EOPNOTSUPP':
      return new Error(`${where}: the driver does not support zero-copy; drop the zero-copy request or use force-copy=on`);
    case 'EBUSY':
      return new Error(`${where}: the queue already has an AF_XDP socket, or a handed-in socket was already bound`);
    default:
      return new Error(`${where}: bind failed: ${e.message}`);
  }
}
