// Where the virtio structures and the MSI-X table live inside the one
// 64-bit memory BAR of a virtio-pci function. Each structure starts on its
// own 4 KiB page so the VMM can trap, map or ioeventfd them independently
// (e.g. KVM ioeventfds on the notify page only).
import { MsixTableEntry, VirtioPciCommonCfg } from 'virtio-spec-types';
import { msixPbaSize } from '../../pci/msix';

/** BAR register index holding every virtio structure and the MSI-X table/PBA. */
export const VIRTIO_PCI_BAR = 0;
/**
 * §4.1.4.4: queue notify address = notify offset + queue_notify_off * multiplier.
 * 4 gives every queue its own DWORD (room for 32-bit NOTIFICATION_DATA writes)
 * and so its own ioeventfd address.
 */
export const NOTIFY_OFF_MULTIPLIER = 4;

const PAGE = 4096;

export interface BarRegion {
  readonly offset: number;
  readonly length: number;
}

export interface VirtioPciBarLayout {
  readonly common: BarRegion;
  readonly isr: BarRegion;
  /** Absent when the device has no device-specific configuration (§4.1.4.6). */
  readonly device: BarRegion | undefined;
  readonly notify: BarRegion;
  readonly msixTable: BarRegion;
  readonly msixPba: BarRegion;
  /** Power of two covering everything. */
  readonly barSize: number;
}

function pageAlign(n: number): number {
  return Math.ceil(n / PAGE) * PAGE;
}

export function virtioPciBarLayout(queueCount: number, configSize: number, msixVectors: number): VirtioPciBarLayout {
  let next = 0;
  const place = (length: number): BarRegion => {
    const region = { offset: next, length };
    next = pageAlign(next + Math.max(length, 1));
    return region;
  };
  const common = place(VirtioPciCommonCfg.SIZE);
  const isr = place(1);
  const device = configSize > 0 ? place(configSize) : undefined;
  // §4.1.4.4: length >= queue_notify_off * multiplier + 2 for every queue.
  const notify = place(Math.max(queueCount, 1) * NOTIFY_OFF_MULTIPLIER);
  const msixTable = place(msixVectors * MsixTableEntry.SIZE);
  const msixPba = place(msixPbaSize(msixVectors));
  return { common, isr, device, notify, msixTable, msixPba, barSize: 2 ** Math.ceil(Math.log2(next)) };
}

/** Whether [offset, offset + size) lies inside `region`. */
export function inRegion(region: BarRegion | undefined, offset: number, size: number): region is BarRegion {
  return region !== undefined && offset >= region.offset && offset + size <= region.offset + region.length;
}
