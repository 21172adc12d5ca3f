// Loading the default program with its XSKMAP and attaching it to an
// interface through a BPF link, so that it goes away with the last fd even
// when the process is killed. Auto mode tries native (driver) then skb.
// The program is loaded multi-buffer aware (BPF_F_XDP_HAS_FRAGS, the flag
// libbpf sets for SEC("xdp.frags")) unless told not to: it reads only
// rx_queue_index, never packet data, so frags change nothing for it, and
// without the flag a driver refuses it above a page-sized MTU (veth in native
// mode: ERANGE at MTU 9000, measured on Linux 6.18; skb mode takes either,
// linearizing the frame for a program without it).
import { unlinkSync } from 'node:fs';
import { xsk, type NativeError } from '../../native/xsk';
import { sys } from '../../native/sys';
import { attachXdpLink, BpfMapType, loadXdpProgram, mapDeleteU32, mapUpdateU32, XdpFlags } from '../../bpf/syscalls';
import { redirectByQueueProgram } from './xdp-program';

export type XdpMode = 'native' | 'skb';

/** BPF_F_XDP_HAS_FRAGS (uapi bpf.h): the XDP program handles multi-buffer frames (Linux >= 5.18). */
export const BPF_F_XDP_HAS_FRAGS = 1 << 5;

/** Load the program multi-buffer aware: auto (if the kernel knows the flag), on (or fail), off. */
export type FragsMode = 'auto' | 'on' | 'off';

/** An attachment whose program is still being loaded and linked (XdpAttachment.attachInBackground). */
export interface PendingXdpAttachment {
  readonly mapFd: number;
  /** The attachment once linked; its map is then the one above (closed by detach()). */
  readonly ready: Promise<XdpAttachment>;
  addSocket(queueId: number, xskFd: number): void;
}

export class XdpAttachment {
  private closed = false;

  private constructor(
    readonly ifname: string,
    readonly ifindex: number,
    readonly mode: XdpMode,
    readonly mapFd: number,
    private readonly progFd: number,
    private readonly linkFd: number,
    readonly progId: number,
    /** Loaded with BPF_F_XDP_HAS_FRAGS. */
    readonly frags: boolean,
  ) {}

  /**
   * Loads the redirect program with an XSKMAP of `mapEntries` slots and
   * attaches it in `mode` (undefined: native, falling back to skb).
   */
  static attach(ifname: string, ifindex: number, mode: XdpMode | undefined, mapEntries: number, frags: FragsMode = 'auto'): XdpAttachment {
    const mapFd = xsk.bpfMapCreate(BpfMapType.XSKMAP, 4, 4, mapEntries, 'xdpvm_xsks');
    let progFd = -1;
    try {
      const program = redirectByQueueProgram(mapFd);
      let withFrags = frags !== 'off';
      try {
        progFd = loadXdpProgram(program, 'xdpvm_redirect', withFrags ? BPF_F_XDP_HAS_FRAGS : 0);
      } catch (e) {
        // A kernel before 5.18 does not know the flag (EINVAL): auto loads the program as before.
        if (!withFrags || frags === 'on' || (e as NativeError).code !== 'EINVAL') throw e;
        withFrags = false;
        progFd = loadXdpProgram(program, 'xdpvm_redirect');
      }
      const tries: XdpMode[] = mode ? [mode] : ['native', 'skb'];
      let lastErr: NativeError | undefined;
      for (const m of tries) {
        try {
          const linkFd = attachXdpLink(progFd, ifindex, m === 'native' ? XdpFlags.DRV_MODE : XdpFlags.SKB_MODE);
          return new XdpAttachment(ifname, ifindex, m, mapFd, progFd, linkFd, xsk.bpfProgId(progFd), withFrags);
        } catch (e) {
          lastErr = e as NativeError;
        }
      }
      throw attachError(ifname, ifindex, mode, lastErr);
    } catch (e) {
      if (progFd >= 0) sys.close(progFd);
      sys.close(mapFd);
      throw e;
    }
  }

  /**
   * attach(), with the program's load and link on the thread pool: the XSKMAP exists at once (sockets can be
   * put in it, the program reads it once linked), `ready` settles when the program is attached (or with the
   * error attach() would throw). Until then frames on the interface go to the kernel's stack as before.
   */
  static attachInBackground(ifname: string, ifindex: number, mode: XdpMode | undefined, mapEntries: number, frags: FragsMode = 'auto'): PendingXdpAttachment {
    const mapFd = xsk.bpfMapCreate(BpfMapType.XSKMAP, 4, 4, mapEntries, 'xdpvm_xsks');
    const tries: XdpMode[] = mode ? [mode] : ['native', 'skb'];
    const flags = tries.map((m) => (m === 'native' ? XdpFlags.DRV_MODE : XdpFlags.SKB_MODE));
    const program = redirectByQueueProgram(mapFd);
    const load = (withFrags: boolean): Promise<XdpAttachment> =>
      xsk.xdpAttachAsync(program, 'GPL', 'xdpvm_redirect', ifindex, flags, withFrags ? BPF_F_XDP_HAS_FRAGS : 0).then(
        (r) => new XdpAttachment(ifname, ifindex, r.flags === XdpFlags.DRV_MODE ? 'native' : 'skb', mapFd, r.progFd, r.linkFd, xsk.bpfProgId(r.progFd), withFrags),
      );
    const ready = load(frags !== 'off')
      // As attach(): a kernel that does not know BPF_F_XDP_HAS_FRAGS gets the program without it (auto).
      .catch((e: NativeError) => {
        if (frags !== 'auto' || e.syscall !== 'bpf(BPF_PROG_LOAD)' || e.code !== 'EINVAL') throw e;
        return load(false);
      })
      .catch((e: NativeError) => {
        sys.close(mapFd);
        if (e.syscall === 'bpf(BPF_PROG_LOAD)') {
          if (e.verifierLog) e.message += `\nverifier log:\n${e.verifierLog}`;
          throw e;
        }
        throw attachError(ifname, ifindex, mode, e);
      });
    return { mapFd, ready, addSocket: (queueId, xskFd) => mapUpdateU32(mapFd, queueId, xskFd) };
  }

  /** Puts the socket for device queue `queueId` into the map. */
  addSocket(queueId: number, xskFd: number): void {
    mapUpdateU32(this.mapFd, queueId, xskFd);
  }

  removeSocket(queueId: number): void {
    mapDeleteU32(this.mapFd, queueId);
  }

  /**
   * Pins the XSKMAP at `mapPath` and the link at `linkPath` (both on bpffs),
   * so that the program stays attached and the map reachable after this
   * process closes its fds. All or nothing: the map pin goes if the link pin fails.
   */
  pin(mapPath: string, linkPath: string): void {
    xsk.bpfObjPin(this.mapFd, mapPath);
    try {
      xsk.bpfObjPin(this.linkFd, linkPath);
    } catch (e) {
      unlinkSync(mapPath);
      throw e;
    }
  }

  /** Detaches the program (closing the link; a pinned link stays) and frees the map. Idempotent. */
  detach(): void {
    if (this.closed) return;
    this.closed = true;
    sys.close(this.linkFd);
    sys.close(this.progFd);
    sys.close(this.mapFd);
  }

  /** Duplicates the link fd: whoever holds a copy keeps the program attached. */
  dupLink(): number {
    return sys.dup(this.linkFd);
  }
}

function attachError(ifname: string, ifindex: number, mode: XdpMode | undefined, err: NativeError | undefined): Error {
  const what = mode ? `in ${mode} mode` : 'in native or skb mode';
  if (err?.code === 'EBUSY' || err?.code === 'EEXIST') {
    const st = xsk.xdpQuery(ifindex);
    return new Error(
      `ifname=${ifname}: another XDP program (id ${st.progId || st.drvProgId || st.skbProgId}) is already attached; ` +
        `detach it, or use inhibit=on with sock-fds from the program's owner`,
    );
  }
  // veth (and drivers like it) refuse a program without BPF_F_XDP_HAS_FRAGS when the MTU exceeds a page's frame.
  if (err?.code === 'ERANGE')
    return new Error(`ifname=${ifname}: the MTU is too large for a single-buffer XDP program ${what} (${err.message}); use multi-buffer=auto or on, or mode=skb`);
  if (err?.code === 'EPERM') return new Error(`ifname=${ifname}: attaching an XDP program needs CAP_NET_ADMIN and CAP_BPF (or run through 'xdpvm xsk-helper')`);
  return new Error(`ifname=${ifname}: cannot attach the XDP program ${what}: ${err?.message ?? 'unknown error'}`);
}
