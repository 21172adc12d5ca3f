// Loading the default program with its XSKMAP and attaching it to an
// interface through a BPF link, so that it goes away with the last fd even
// when the process is killed. Auto mode tries native (driver) then skb.
import { unlinkSync } from 'node:fs';
import { xsk, type NativeError } from '../../native/xsk';
import { sys } from '../../native/sys';
import { attachXdpLink, BpfMapType, loadXdpProgram, mapDeleteU32, mapUpdateU32, XdpFlags } from '../../bpf/syscalls';
import { redirectByQueueProgram } from './xdp-program';

export type XdpMode = 'native' | 'skb';

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
  ) {}

  /**
   * Loads the redirect program with an XSKMAP of `mapEntries` slots and
   * attaches it in `mode` (undefined: native, falling back to skb).
   */
  static attach(ifname: string, ifindex: number, mode: XdpMode | undefined, mapEntries: number): XdpAttachment {
    const mapFd = xsk.bpfMapCreate(BpfMapType.XSKMAP, 4, 4, mapEntries, 'xdpvm_xsks');
    let progFd = -1;
    try {
      progFd = loadXdpProgram(redirectByQueueProgram(mapFd), 'xdpvm_redirect');
      const tries: XdpMode[] = mode ? [mode] : ['native', 'skb'];
      let lastErr: NativeError | undefined;
      for (const m of tries) {
        try {
          const linkFd = attachXdpLink(progFd, ifindex, m === 'native' ? XdpFlags.DRV_MODE : XdpFlags.SKB_MODE);
          return new XdpAttachment(ifname, ifindex, m, mapFd, progFd, linkFd, xsk.bpfProgId(progFd));
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
  static attachInBackground(ifname: string, ifindex: number, mode: XdpMode | undefined, mapEntries: number): PendingXdpAttachment {
    const mapFd = xsk.bpfMapCreate(BpfMapType.XSKMAP, 4, 4, mapEntries, 'xdpvm_xsks');
    const tries: XdpMode[] = mode ? [mode] : ['native', 'skb'];
    const flags = tries.map((m) => (m === 'native' ? XdpFlags.DRV_MODE : XdpFlags.SKB_MODE));
    const ready = xsk.xdpAttachAsync(redirectByQueueProgram(mapFd), 'GPL', 'xdpvm_redirect', ifindex, flags).then(
      (r) => new XdpAttachment(ifname, ifindex, r.flags === XdpFlags.DRV_MODE ? 'native' : 'skb', mapFd, r.progFd, r.linkFd, xsk.bpfProgId(r.progFd)),
      (e: NativeError) => {
        sys.close(mapFd);
        if (e.syscall === 'bpf(BPF_PROG_LOAD)') {
          if (e.verifierLog) e.message += `\nverifier log:\n${e.verifierLog}`;
          throw e;
        }
        throw attachError(ifname, ifindex, mode, e);
      },
    );
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
  if (err?.code === 'EPERM') return new Error(`ifname=${ifname}: attaching an XDP program needs CAP_NET_ADMIN and CAP_BPF (or run through 'xdpvm xsk-helper')`);
  return new Error(`ifname=${ifname}: cannot attach the XDP program ${what}: ${err?.message ?? 'unknown error'}`);
}
