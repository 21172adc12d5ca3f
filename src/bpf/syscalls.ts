// Typed wrappers over the bpf(2) calls of the xsk addon: maps, programs, links.
import { readlinkSync, statfsSync } from 'node:fs';
import { xsk, type NativeError } from '../native/xsk';

export const BpfMapType = { ARRAY: 2, PERCPU_ARRAY: 6, XSKMAP: 17 } as const;
export const BpfProgType = { XDP: 6 } as const;
export const BpfAttachType = { XDP: 37 } as const;
/** XDP attach flags (if_link.h). */
export const XdpFlags = { UPDATE_IF_NOEXIST: 1 << 0, SKB_MODE: 1 << 1, DRV_MODE: 1 << 2, HW_MODE: 1 << 3 } as const;

/** progFlags: bpf_attr.prog_flags (BPF_F_XDP_HAS_FRAGS for a multi-buffer aware program). */
export function loadXdpProgram(instructions: Uint8Array, name: string, progFlags = 0): number {
  try {
    return xsk.bpfProgLoad(BpfProgType.XDP, instructions, 'GPL', name, BpfAttachType.XDP, progFlags);
  } catch (e) {
    const err = e as NativeError;
    if (err.verifierLog) err.message += `\nverifier log:\n${err.verifierLog}`;
    throw err;
  }
}

/** Attaches an XDP program through a BPF link: detached when the last fd to the link closes. */
export function attachXdpLink(progFd: number, ifindex: number, flags: number): number {
  return xsk.bpfLinkCreate(progFd, ifindex, BpfAttachType.XDP, flags);
}

const keyScratch = new Uint32Array(1);

/** BPF_MAP_UPDATE_ELEM flags. */
export const MapUpdate = { ANY: 0, NOEXIST: 1, EXIST: 2 } as const;

export function mapUpdateU32(mapFd: number, key: number, value: number, flags: number = MapUpdate.ANY): void {
  keyScratch[0] = key;
  xsk.bpfMapUpdate(mapFd, new Uint8Array(keyScratch.buffer), new Uint8Array(new Uint32Array([value]).buffer), flags);
}

export function mapDeleteU32(mapFd: number, key: number): boolean {
  keyScratch[0] = key;
  return xsk.bpfMapDelete(mapFd, new Uint8Array(keyScratch.buffer));
}

/** statfs f_type of a bpf filesystem (linux/magic.h). */
export const BPF_FS_MAGIC = 0xcafe4a11;
export const BpfLinkType = { XDP: 6 } as const;

/** Whether `path` lies on a bpf filesystem (false if it cannot be looked up). */
export function onBpfFs(path: string): boolean {
  try {
    return statfsSync(path).type === BPF_FS_MAGIC;
  } catch {
    return false;
  }
}

export type BpfObjectKind = 'map' | 'prog' | 'link' | 'other';

/**
 * What kind of BPF object an fd refers to: the kernel names its anonymous
 * inode after it. Needed before BPF_OBJ_GET_INFO_BY_FD, which fills the
 * info struct of whatever kind the fd is.
 */
export function bpfObjectKind(fd: number): BpfObjectKind {
  // A link created here reads "bpf_link", the same link from BPF_OBJ_GET "bpf-link" (Linux 6.18).
  const m = /^anon_inode:bpf[-_](map|prog|link)$/.exec(readlinkSync(`/proc/self/fd/${fd}`));
  return m ? (m[1] as BpfObjectKind) : 'other';
}
