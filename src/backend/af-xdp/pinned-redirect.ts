// The privileged half of map-path mode (`xdpvm xsk-helper --pin-map`):
// attach the default redirect program and pin its XSKMAP on bpffs, handed to
// one user, so that an unprivileged VMM can later put its own sockets into
// it (inhibit=on,map-path=...). The BPF link is pinned beside the map
// (`<map>_link`): it keeps the program attached after the helper exits, and
// unpinning it (`--unpin-map`) detaches the program.
import { chownSync, existsSync, statSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import { bpfObjectKind, BpfLinkType, BpfMapType, onBpfFs } from '../../bpf/syscalls';
import { xsk, type NativeError } from '../../native/xsk';
import { sys } from '../../native/sys';
import { OptionError } from './af-xdp-options';
import { XdpAttachment, type XdpMode } from './xdp-attachment';

export interface PinRedirectOptions {
  ifname: string;
  queues: number;
  startQueue: number;
  mode?: XdpMode;
  mapPath: string;
  /** Who may open the pinned map read-write (the pin becomes theirs, mode 0600). */
  owner: { uid: number; gid: number };
}

export interface PinnedRedirect {
  mapPath: string;
  linkPath: string;
  mode: XdpMode;
  progId: number;
  /** Slots of the map: the program's key is the receive queue, so queue q is slot q. */
  maxEntries: number;
}

// bpffs refuses '.' in names (reserved by the kernel), hence '_link'.
export const linkPinPath = (mapPath: string): string => `${mapPath}_link`;

export function pinRedirect(o: PinRedirectOptions): PinnedRedirect {
  if (o.queues < 1) throw new OptionError(`xsk-helper: --queues must be at least 1 (got ${o.queues})`);
  if (o.startQueue < 0) throw new OptionError(`xsk-helper: --start-queue must not be negative (got ${o.startQueue})`);
  const mapPath = path.resolve(o.mapPath);
  const linkPath = linkPinPath(mapPath);
  const dir = path.dirname(mapPath);
  if (path.basename(mapPath).includes('.')) throw new OptionError(`xsk-helper: --pin-map: bpffs names cannot contain '.' (got '${path.basename(mapPath)}')`);
  if (!existsSync(dir)) throw new OptionError(`xsk-helper: --pin-map: directory '${dir}' does not exist (create it on the bpf filesystem first)`);
  if (!onBpfFs(dir)) throw new OptionError(`xsk-helper: --pin-map: '${dir}' is not on a bpf filesystem (mount one: 'mount -t bpf bpf /sys/fs/bpf')`);
  for (const p of [mapPath, linkPath])
    if (existsSync(p)) throw new OptionError(`xsk-helper: --pin-map: '${p}' already exists (undo an earlier pin with --unpin-map ${mapPath})`);
  const ifindex = xsk.ifNameToIndex(o.ifname);
  if (ifindex === 0) throw new OptionError(`xsk-helper: --ifname: no interface named '${o.ifname}'`);

  // Slots for queues 0..start+queues-1: the program looks up the receive queue index.
  const maxEntries = o.startQueue + o.queues;
  const attachment = XdpAttachment.attach(o.ifname, ifindex, o.mode, maxEntries);
  try {
    attachment.pin(mapPath, linkPath);
    try {
      chownSync(mapPath, o.owner.uid, o.owner.gid);
    } catch (e) {
      unlinkSync(linkPath);
      unlinkSync(mapPath);
      throw e;
    }
    return { mapPath, linkPath, mode: attachment.mode, progId: attachment.progId, maxEntries };
  } finally {
    // Our fds go; the pins keep the link (and so the program) and the map alive.
    attachment.detach();
  }
}

export interface UnpinnedRedirect {
  ifindex: number;
  progId: number;
  mapRemoved: boolean;
}

/** Undoes pinRedirect: unpins the link (detaching the program) and the map. Refuses pins it did not make. */
export function unpinRedirect(mapPathArg: string): UnpinnedRedirect {
  const mapPath = path.resolve(mapPathArg);
  const linkPath = linkPinPath(mapPath);
  if (!existsSync(linkPath))
    throw new OptionError(`xsk-helper: --unpin-map: '${linkPath}' does not exist, so '${mapPath}' was not pinned by 'xsk-helper --pin-map'; not touching it`);
  const linkFd = objGet(linkPath);
  let mapFd = -1;
  try {
    if (bpfObjectKind(linkFd) !== 'link') throw new OptionError(`xsk-helper: --unpin-map: '${linkPath}' is not a pinned BPF link; not touching it`);
    const link = xsk.bpfLinkInfo(linkFd);
    if (link.type !== BpfLinkType.XDP) throw new OptionError(`xsk-helper: --unpin-map: '${linkPath}' is not an XDP link (type ${link.type}); not touching it`);
    const mapThere = existsSync(mapPath);
    if (mapThere) {
      if (statSync(mapPath).isDirectory()) throw new OptionError(`xsk-helper: --unpin-map: '${mapPath}' is a directory; not touching it`);
      mapFd = objGet(mapPath);
      if (bpfObjectKind(mapFd) !== 'map' || xsk.bpfMapInfo(mapFd).type !== BpfMapType.XSKMAP)
        throw new OptionError(`xsk-helper: --unpin-map: '${mapPath}' is not a pinned XSKMAP; not touching it`);
    }
    // The link pin first: the program stops redirecting before its map disappears from the path.
    unlinkSync(linkPath);
    if (mapThere) unlinkSync(mapPath);
    return { ifindex: link.ifindex, progId: link.progId, mapRemoved: mapThere };
  } finally {
    // The last reference to the link: closing it detaches the program.
    sys.close(linkFd);
    if (mapFd >= 0) sys.close(mapFd);
  }
}

function objGet(p: string): number {
  try {
    return xsk.bpfObjGet(p, 0);
  } catch (e) {
    throw new OptionError(`xsk-helper: --unpin-map: cannot open '${p}': ${(e as NativeError).message}`);
  }
}
