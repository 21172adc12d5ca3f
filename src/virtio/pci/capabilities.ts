// §4.1.4: virtio structure capabilities (vendor-specific, id 0x09) in a
// function's capability list, telling the driver where each structure is.
import { PciCapabilityId, VirtioPciCap } from 'virtio-spec-types';
import type { PciCapabilityHooks } from '../../pci/capability-list';
import type { PciFunction } from '../../pci/pci-function';

export interface VirtioCapability {
  /** VirtioPciCapType. */
  readonly cfgType: number;
  readonly bar: number;
  readonly offset: number;
  readonly length: number;
  /** Bytes following struct virtio_pci_cap (notify multiplier, pci_cfg_data). */
  readonly extraLength?: number;
  readonly id?: number;
}

/** Adds a struct virtio_pci_cap (plus extra bytes) and returns its configuration-space offset. */
export function addVirtioCapability(fn: PciFunction, cap: VirtioCapability, hooks?: PciCapabilityHooks): number {
  const length = VirtioPciCap.SIZE + (cap.extraLength ?? 0);
  const at = fn.capabilities.add(PciCapabilityId.VENDOR_SPECIFIC, length, hooks);
  const c = fn.config;
  c.set8(at + VirtioPciCap.CAP_LEN, length);
  c.set8(at + VirtioPciCap.CFG_TYPE, cap.cfgType);
  c.set8(at + VirtioPciCap.BAR, cap.bar);
  c.set8(at + VirtioPciCap.ID, cap.id ?? 0);
  c.set32(at + VirtioPciCap.OFFSET, cap.offset);
  c.set32(at + VirtioPciCap.LENGTH, cap.length);
  return at;
}
