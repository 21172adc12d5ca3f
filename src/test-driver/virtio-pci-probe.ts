// §4.1.4: how a driver finds a virtio-pci function's structures: walk the
// capability list, take the first vendor-specific capability of each
// cfg_type (§4.1.4.1: the driver uses the first it can), and add the offset
// to the address its BAR decodes at. The MSI-X capability (PCI 3.0 §6.8.2)
// gives the table and PBA the same way.
import { MsixCap, MsixControl, PciCapabilityId, VirtioPciCap, VirtioPciCapType, VirtioPciNotifyCap } from 'virtio-spec-types';
import type { PciGuestPort, PciLocation } from './pci-guest-port';

export interface MsixLocation {
  /** Configuration-space offset of the MSI-X capability. */
  readonly capOffset: number;
  readonly vectors: number;
  /** Guest-physical address of the vector table and of the Pending Bit Array. */
  readonly table: number;
  readonly pba: number;
}

export interface VirtioPciLocations {
  readonly common: number;
  readonly notify: number;
  /** §4.1.4.4 notify_off_multiplier. */
  readonly notifyMultiplier: number;
  readonly isr: number;
  /** Device-specific configuration; -1 when the device has none. */
  readonly device: number;
  readonly deviceLength: number;
  readonly msix: MsixLocation | undefined;
}

export class VirtioProbeError extends Error {
  override name = 'VirtioProbeError';
}

export function probeVirtioPci(port: PciGuestPort, loc: PciLocation): VirtioPciLocations {
  const found = new Map<number, { address: number; length: number; at: number }>();
  let msix: MsixLocation | undefined;
  for (const cap of port.capabilities(loc)) {
    if (cap.id === PciCapabilityId.MSIX && msix === undefined) {
      const control = port.configRead(loc, cap.offset + MsixCap.MESSAGE_CONTROL, 2);
      const table = port.configRead(loc, cap.offset + MsixCap.TABLE, 4);
      const pba = port.configRead(loc, cap.offset + MsixCap.PBA, 4);
      msix = {
        capOffset: cap.offset,
        vectors: (control & MsixControl.TABLE_SIZE_MASK) + 1,
        table: port.barAddress(loc, table & 7) + ((table & ~7) >>> 0),
        pba: port.barAddress(loc, pba & 7) + ((pba & ~7) >>> 0),
      };
      continue;
    }
    if (cap.id !== PciCapabilityId.VENDOR_SPECIFIC) continue;
    const type = port.configRead(loc, cap.offset + VirtioPciCap.CFG_TYPE, 1);
    if (found.has(type)) continue;
    const bar = port.configRead(loc, cap.offset + VirtioPciCap.BAR, 1);
    // §4.1.4.1: BAR values 0x0..0x5 name a BAR; others are reserved (PCI_CFG has none of its own to use).
    if (bar > 5) continue;
    const offset = port.configRead(loc, cap.offset + VirtioPciCap.OFFSET, 4);
    const length = port.configRead(loc, cap.offset + VirtioPciCap.LENGTH, 4);
    found.set(type, { address: port.barAddress(loc, bar) + offset, length, at: cap.offset });
  }
  const need = (type: number, name: string): { address: number; length: number; at: number } => {
    const s = found.get(type);
    if (!s) throw new VirtioProbeError(`virtio-pci: no ${name} capability`);
    return s;
  };
  const common = need(VirtioPciCapType.COMMON_CFG, 'common configuration');
  const notify = need(VirtioPciCapType.NOTIFY_CFG, 'notification');
  const isr = need(VirtioPciCapType.ISR_CFG, 'ISR');
  const device = found.get(VirtioPciCapType.DEVICE_CFG);
  return {
    common: common.address,
    notify: notify.address,
    notifyMultiplier: port.configRead(loc, notify.at + VirtioPciNotifyCap.NOTIFY_OFF_MULTIPLIER, 4),
    isr: isr.address,
    device: device?.address ?? -1,
    deviceLength: device?.length ?? 0,
    msix,
  };
}
