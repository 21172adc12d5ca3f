// Typed wrappers over the bpf(2) calls of the xsk addon: maps, programs, links.
import { xsk, type NativeError } from '../native/xsk';

export const BpfMapType = { ARRAY: 2, PERCPU_ARRAY: 6, XSKMAP: 17 } as const;
export const BpfProgType = { XDP: 6 } as const;
export const BpfAttachType = { XDP: 37 } as const;
/** XDP attach flags (if_link.h). */
export const XdpFlags = { UPDATE_IF_NOEXIST: 1 << 0, SKB_MODE: 1 << 1, DRV_MODE: 1 << 2, HW_MODE: 1 << 3 } as const;

export function loadXdpProgram(instructions: Uint8Array, name: string): number {
  try {
    return xsk.bpfProgLoad(BpfProgType.XDP, instructions, 'GPL', name, BpfAttachType.XDP);
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

export function mapUpdateU32(mapFd: number, key: number, value: number): void {
  keyScratch[0] = key;
  xsk.bpfMapUpdate(mapFd, new Uint8Array(keyScratch.buffer), new Uint8Array(new Uint32Array([value]).buffer));
}

export function mapDeleteU32(mapFd: number, key: number): boolean {
  keyScratch[0] = key;
  return xsk.bpfMapDelete(mapFd, new Uint8Array(keyScratch.buffer));
}
