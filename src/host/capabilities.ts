// The calling process's capability sets, read from /proc/self/status.
import { readFileSync } from 'node:fs';

export const Capability = { NET_RAW: 13, IPC_LOCK: 14, NET_ADMIN: 12, SYS_ADMIN: 21, BPF: 39 } as const;

export interface CapabilitySets {
  inheritable: bigint;
  permitted: bigint;
  effective: bigint;
  bounding: bigint;
  ambient: bigint;
}

export function capabilitySets(statusText = readFileSync('/proc/self/status', 'utf8')): CapabilitySets {
  const get = (key: string): bigint => {
    const m = new RegExp(`^${key}:\\s*([0-9a-f]+)$`, 'm').exec(statusText);
    return m ? BigInt(`0x${m[1]}`) : 0n;
  };
  return { inheritable: get('CapInh'), permitted: get('CapPrm'), effective: get('CapEff'), bounding: get('CapBnd'), ambient: get('CapAmb') };
}

export function hasEffectiveCapability(cap: number): boolean {
  return (capabilitySets().effective & (1n << BigInt(cap))) !== 0n;
}
