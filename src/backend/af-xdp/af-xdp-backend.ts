// The AF_XDP network backend (-netdev af-xdp): one socket and queue per device
// queue, the default XDP program attached unless inhibit=on (then the sockets
// are handed in, sock-fds, or ours go into a pinned XSKMAP, map-path), and a
// tear-down that undoes only what this backend did.
import { Capability, hasEffectiveCapability } from '../../host/capabilities';
import { xsk, type XskStatistics } from '../../native/xsk';
import { sys } from '../../native/sys';
import { AfXdpQueue } from './af-xdp-queue';
import { OptionError, type AfXdpOptions } from './af-xdp-options';
import { PinnedXskMap } from './pinned-xsk-map';
import { XdpAttachment, type PendingXdpAttachment, type XdpMode } from './xdp-attachment';
import { GuestUmemSetupError, openGuestUmemQueues, type GuestUmemArea } from './guest-umem';
import type { GuestUmemQueue } from './guest-umem-queue';
import type { NetBackendQueue } from '../net-backend';
import { DEFAULT_FRAME_COUNT, DEFAULT_FRAME_SIZE, DEFAULT_RING_SIZE, XskSocket, type CopyMode, type XskSocketHandle } from './xsk-socket';
import type { BackendQueueSource } from '../queue-source';

/** Sizes below the user-visible options (tests and benchmarks shrink them). */
export interface AfXdpTuning {
  frameSize: number;
  frameCount: number;
  ringSize: number;
  /** Tests: act as a kernel without multi-buffer (XskSocketConfig.simulateNoSg). */
  simulateNoSg?: boolean;
}

export const DEFAULT_TUNING: AfXdpTuning = { frameSize: DEFAULT_FRAME_SIZE, frameCount: DEFAULT_FRAME_COUNT, ringSize: DEFAULT_RING_SIZE };

/** The UMEM frame size of an interface whose received frames (MTU, Ethernet header, a VLAN tag) fit this one. */
export const SMALL_FRAME_SIZE = 2048;

/**
 * The sizes open() uses unless told: DEFAULT_TUNING, with 2 KiB frames while a whole frame of the interface's MTU
 * fits one (MTU <= 1774). The UMEM is registered (pinned, every page faulted in) at open, on the path to the
 * first packet, and fresh memory is slow to fault in on a nested host (32 MiB ~30 ms measured on PVM, 16 MiB
 * ~15 ms); larger MTUs keep 4 KiB frames, so a jumbo frame needs no more descriptors than before.
 */
export function tuningForMtu(ifMtu: number): AfXdpTuning {
  return fitsOneFrame(ifMtu, SMALL_FRAME_SIZE) ? { ...DEFAULT_TUNING, frameSize: SMALL_FRAME_SIZE } : DEFAULT_TUNING;
}

/** Ethernet header plus one VLAN tag: what a frame carries beyond the MTU. */
const ETH_VLAN_HLEN = 18;

/** Whether a received frame of this MTU (with an Ethernet header and a VLAN tag) fits one UMEM frame of this size. */
function fitsOneFrame(ifMtu: number, frameSize: number): boolean {
  return ifMtu + ETH_VLAN_HLEN <= frameSize - xsk.constants.XDP_PACKET_HEADROOM;
}

export interface AfXdpOpenOptions {
  /**
   * Load and link the XDP program on the thread pool (XdpAttachment.attachInBackground): open() returns with
   * the sockets bound and in the XSKMAP, and `attached` settles once frames are steered to them.
   */
  attachInBackground?: boolean;
  /** Guest RAM the backend may register as its UMEM (guest-umem=auto|on); without it the copy path is used. */
  guestRam?: GuestUmemArea;
}

export class AfXdpBackend {
  private closed = false;
  /** The interface's MTU when the backend opened (IFLA_MTU): the device's default host_mtu. */
  ifMtu = 0;
  /** Settles when the XDP program is attached (rejects with why it could not be); resolved at once unless attachInBackground. */
  readonly attached: Promise<void>;

  private constructor(
    readonly options: AfXdpOptions,
    readonly ifindex: number,
    /** The attach mode in force: ours (once attached), or (inhibit=on) the helper's. */
    public mode: XdpMode,
    readonly sockets: readonly XskSocket[],
    private attachment: XdpAttachment | undefined,
    pending: PendingXdpAttachment | undefined,
    private readonly pinnedMap: PinnedXskMap | undefined,
    /** Set when guest RAM is the UMEM: these queues are the device's (deviceQueues). */
    readonly guestUmemQueues: readonly GuestUmemQueue[] | undefined,
    private readonly releaseGuestUmem: (() => void) | undefined,
  ) {
    this.attached = pending
      ? pending.ready.then((a) => {
          // Closed meanwhile: the program goes as soon as it exists.
          if (this.closed) return a.detach();
          this.attachment = a;
          this.mode = a.mode;
        })
      : Promise.resolve();
    // Whoever awaits it sees the error; nobody awaiting must not crash the process.
    this.attached.catch(() => {});
  }

  private serviced: AfXdpQueue[] | undefined;

  /**
   * The queues, serviced from this thread (created on first use). A socket is
   * serviced by exactly one thread: use either this or socket handles passed
   * to workers (XskSocket.handle / AfXdpQueue over XskSocket.fromHandle).
   */
  get queues(): readonly AfXdpQueue[] {
    if (this.guestUmemQueues) throw new Error('guest RAM is the UMEM: use deviceQueues');
    this.serviced ??= this.sockets.map((s) => new AfXdpQueue(s));
    return this.serviced;
  }

  /** The queues a device services from this thread: guest-UMEM queues when guest RAM is the UMEM, else `queues`. */
  get deviceQueues(): readonly NetBackendQueue[] {
    return this.guestUmemQueues ?? this.queues;
  }

  /**
   * How I/O threads open this backend's queues: each socket's handle, and where guest RAM is the UMEM the
   * queue's layout, so the thread services it in place (kind 'guest-umem'; reset: rebindForThread).
   */
  threadSources(): BackendQueueSource[] {
    const g = this.guestUmemQueues;
    if (!g) return this.sockets.map((s) => ({ kind: 'af-xdp', socket: s.handle() }));
    return g.map((q) => ({ kind: 'guest-umem', socket: q.socket.handle(), ...q.layout }));
  }

  /**
   * The owner's half of a device reset an I/O thread released (guest RAM as the UMEM): closes queue `pair`'s
   * socket (the kernel writes into none of the guest buffers it held after that) and binds a fresh one on the
   * same queue and UMEM, published in place of the old; returns its handle for the thread.
   */
  rebindForThread(pair: number): XskSocketHandle {
    const q = this.guestUmemQueues?.[pair];
    if (!q || this.closed) throw new Error(`af-xdp: ${this.options.id}: queue ${pair} has no guest-RAM UMEM to rebind`);
    return q.rebind().handle();
  }

  static open(options: AfXdpOptions, sizes?: AfXdpTuning, how: AfXdpOpenOptions = {}): AfXdpBackend {
    const { ifname, queues: n, startQueue } = options;
    const ifindex = xsk.ifNameToIndex(ifname);
    if (ifindex === 0) throw new OptionError(`af-xdp: 'ifname': no interface named '${ifname}'`);
    const ifMtu = xsk.xdpQuery(ifindex).mtu;
    const tuning = sizes ?? tuningForMtu(ifMtu);
    const multiBuffer = options.multiBuffer ?? 'auto';
    // Frames of this MTU fill more than one received UMEM frame.
    const jumbo = !fitsOneFrame(ifMtu, tuning.frameSize);
    checkMemlock(options, tuning);
    if (options.sockFds) checkSockFds(options.sockFds);

    let attachment: XdpAttachment | undefined;
    let pinnedMap: PinnedXskMap | undefined;
    let pending: PendingXdpAttachment | undefined;
    let sockets: XskSocket[] = [];
    let handedIn = options.sockFds ? [...options.sockFds] : undefined;
    let guest: ReturnType<typeof openGuestUmemQueues> | undefined;
    if (options.guestUmem === 'on' && options.multiBuffer === 'on')
      throw new OptionError(`af-xdp: 'guest-umem=on' and 'multi-buffer=on' exclude each other: guest RAM as the UMEM carries one buffer per frame`);
    if (options.guestUmem === 'on' && !how.guestRam)
      throw new OptionError(`af-xdp: 'guest-umem=on': this command cannot give the backend its guest RAM (use guest-umem=auto or off)`);
    try {
      // The map is checked before any UMEM is allocated: a wrong path fails fast.
      if (options.mapPath !== undefined) pinnedMap = PinnedXskMap.open(options.mapPath, options.mapStartIndex ?? 0, n);
      if (!options.inhibit && how.attachInBackground) pending = XdpAttachment.attachInBackground(ifname, ifindex, options.mode, startQueue + n, multiBuffer);
      else if (!options.inhibit) attachment = XdpAttachment.attach(ifname, ifindex, options.mode, startQueue + n, multiBuffer);
      const copyMode: CopyMode = options.forceCopy ? 'copy' : 'default';
      // auto leaves a program we did not load alone: it may move the data start and write in front of a guest buffer.
      // auto also leaves multi-buffer to the copy path: guest RAM as the UMEM carries one buffer per frame.
      const needsSg = multiBuffer === 'on' || (multiBuffer === 'auto' && jumbo);
      // Unset is off: the copy path wins the plain send and receive workloads (README, Guest RAM as the UMEM).
      const asked = options.guestUmem ?? 'off';
      const wanted = how.guestRam !== undefined && (asked === 'on' || (asked === 'auto' && !options.inhibit && !needsSg));
      if (how.guestRam !== undefined && asked === 'auto' && options.inhibit && !wanted)
        process.stderr.write(`af-xdp: ${options.id}: 'inhibit=on': the XDP program is not ours and may write in front of a guest buffer; using the copy path\n`);
      else if (how.guestRam !== undefined && asked === 'auto' && !wanted)
        process.stderr.write(
          `af-xdp: ${options.id}: ${jumbo ? `MTU ${ifMtu} on ${ifname} needs` : `'multi-buffer=on' asks for`} multi-buffer, which guest RAM as the UMEM ` +
            `does not carry; using the copy path\n`,
        );
      if (wanted) {
        const publish = (q: number, fd: number): void => {
          (attachment ?? pending)?.addSocket(startQueue + q, fd);
          pinnedMap?.insert(q, fd);
        };
        try {
          guest = openGuestUmemQueues({ area: how.guestRam!, ifname, ifindex, startQueue, queues: n, ringSize: tuning.ringSize, copyMode, ...(handedIn ? { fds: handedIn } : {}), publish });
          sockets = guest.sockets;
          handedIn = undefined;
        } catch (e) {
          if (!(e instanceof GuestUmemSetupError)) throw e;
          if (options.guestUmem === 'on') throw new OptionError(`af-xdp: 'guest-umem=on': the kernel refused guest RAM as the UMEM: ${e.message}`);
          process.stderr.write(`af-xdp: ${options.id}: guest RAM cannot be the UMEM (${e.message}); using the copy path\n`);
        }
      }
      for (let q = 0; q < n && !guest; q++) {
        const fd = handedIn?.shift();
        const socket = XskSocket.open({
          ifname,
          ifindex,
          queueId: startQueue + q,
          frameSize: tuning.frameSize,
          frameCount: tuning.frameCount,
          fillSize: tuning.ringSize,
          completionSize: tuning.ringSize,
          rxSize: tuning.ringSize,
          txSize: tuning.ringSize,
          copyMode,
          multiBuffer,
          ...(tuning.simulateNoSg ? { simulateNoSg: true } : {}),
          ...(fd !== undefined ? { fd } : {}),
        });
        sockets.push(socket);
        (attachment ?? pending)?.addSocket(startQueue + q, socket.fd);
        // Bound first, then published: the program never redirects into a socket that cannot receive yet.
        pinnedMap?.insert(q, socket.fd);
      }
      // Until the background attach says which mode took, the one asked for (auto tries native first).
      const mode = attachment?.mode ?? (pending ? (options.mode ?? 'native') : attachedMode(ifname, ifindex));
      const backend = new AfXdpBackend(options, ifindex, mode, sockets, attachment, pending, pinnedMap, guest?.queues, guest?.release);
      backend.ifMtu = ifMtu;
      const note = multiBufferNote(options, sockets, jumbo, ifMtu, guest !== undefined);
      if (note) process.stderr.write(`${note}\n`);
      return backend;
    } catch (e) {
      pinnedMap?.close();
      for (const s of sockets) s.close();
      guest?.release();
      for (const fd of handedIn ?? []) sys.close(fd);
      attachment?.detach();
      pending?.ready.then((a) => a.detach(), () => {});
      throw e;
    }
  }

  /** Whether frames larger than one UMEM frame cross both ways (every socket bound with XDP_USE_SG). */
  get multiBuffer(): boolean {
    return this.sockets.length > 0 && this.sockets.every((s) => s.sg);
  }

  /** Whether the sockets were bound zero-copy (the driver supports it and force-copy is off). */
  get zeroCopy(): boolean {
    return this.sockets.every((s) => s.zeroCopy);
  }

  /** The kernel's drop counters (XDP_STATISTICS) of queue pair `pair`'s socket; undefined once closed. */
  statistics(pair: number): XskStatistics | undefined {
    const s = this.sockets[pair];
    if (this.closed || s === undefined) return undefined;
    return xsk.statistics(s.fd);
  }

  /**
   * Takes our sockets out of a pinned map, closes them, frees the UMEMs and detaches the program if this backend
   * attached it (a program still being attached in the background is detached as soon as it is; await `attached`
   * to know it is gone).
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    // Before the sockets close, while the slots are still ours.
    for (const p of this.pinnedMap?.close() ?? [])
      process.stderr.write(`af-xdp: ${this.options.id}: cannot remove our socket from '${this.options.mapPath ?? ''}': ${p}\n`);
    for (const s of this.sockets) {
      try {
        this.attachment?.removeSocket(s.config.queueId);
      } catch {
        // Already gone with the socket; nothing to undo.
      }
      s.close();
    }
    this.releaseGuestUmem?.();
    this.attachment?.detach();
  }
}

/**
 * The one line open() prints when frames larger than a UMEM frame will be dropped: multi-buffer was asked for
 * (auto) and the kernel refused it, or it is off (or guest RAM is the UMEM) on an interface whose MTU needs it.
 */
function multiBufferNote(options: AfXdpOptions, sockets: readonly XskSocket[], jumbo: boolean, ifMtu: number, guestUmem: boolean): string | undefined {
  if (sockets.length === 0 || sockets.every((s) => s.sg)) return undefined;
  const refused = sockets.find((s) => s.sgRefused !== undefined)?.sgRefused;
  if (refused === undefined && !jumbo) return undefined;
  const why = refused !== undefined ? `the kernel refuses XDP_USE_SG (${refused}; Linux >= 6.6 has it)` : guestUmem ? 'guest RAM is the UMEM' : 'multi-buffer=off';
  const frame = sockets[0]!.config.frameSize;
  return (
    `af-xdp: ${options.id}: no multi-buffer on ${options.ifname} (${why}): frames over ${frame - xsk.constants.XDP_PACKET_HEADROOM} bytes received ` +
    `or ${frame} bytes sent are dropped and counted (MTU ${ifMtu})`
  );
}

/** inhibit=on: the traffic arrives only if somebody attached a program; say so now rather than never. */
function attachedMode(ifname: string, ifindex: number): XdpMode {
  const st = xsk.xdpQuery(ifindex);
  if (st.attached === 0)
    throw new OptionError(`af-xdp: 'inhibit=on' but no XDP program is attached to ${ifname}: traffic would never reach the sockets`);
  return st.skbProgId !== 0 && st.drvProgId === 0 ? 'skb' : 'native';
}

function checkMemlock(options: AfXdpOptions, tuning: AfXdpTuning): void {
  const needed = options.queues * tuning.frameSize * tuning.frameCount;
  const { soft } = sys.memlockLimit();
  if (soft < 0 || soft >= needed || hasEffectiveCapability(Capability.IPC_LOCK)) return;
  const mib = (b: number): string => `${Math.ceil(b / (1 << 20))} MiB`;
  throw new OptionError(
    `af-xdp: 'queues=${options.queues}' needs ${mib(needed)} of locked memory for its UMEMs but RLIMIT_MEMLOCK is ${mib(soft)}; ` +
      `raise it (e.g. 'ulimit -l ${Math.ceil(needed / 1024)}', or LimitMEMLOCK= for a systemd unit)`,
  );
}

function checkSockFds(fds: readonly number[]): void {
  for (const fd of fds) {
    const domain = xsk.socketDomain(fd);
    if (domain === -9 /* EBADF */) throw new OptionError(`af-xdp: 'sock-fds': fd ${fd} is not open`);
    if (domain < 0) throw new OptionError(`af-xdp: 'sock-fds': fd ${fd} is not a socket`);
    if (domain !== xsk.constants.AF_XDP) throw new OptionError(`af-xdp: 'sock-fds': fd ${fd} is not an AF_XDP socket (domain ${domain})`);
  }
}
