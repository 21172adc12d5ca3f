// The host bridge at 00:00.0. Linux's mechanism #1 probe (pci_sanity_check)
// only trusts conf1 if it finds a host bridge or VGA device on bus 0, so a
// bus without one is never scanned.
import { PciBaseClass, PciBridgeSubclass } from 'virtio-spec-types';
import { PciFunction } from './pci-function';

/**
 * The ids Firecracker and cloud-hypervisor give their virtual host bridge
 * (Intel, "virt PCIe host"); no guest driver binds to them.
 */
export const HOST_BRIDGE_VENDOR_ID = 0x8086;
export const HOST_BRIDGE_DEVICE_ID = 0x0d57;

export function createHostBridge(): PciFunction {
  return new PciFunction({
    vendorId: HOST_BRIDGE_VENDOR_ID,
    deviceId: HOST_BRIDGE_DEVICE_ID,
    classCode: { base: PciBaseClass.BRIDGE, sub: PciBridgeSubclass.HOST },
  });
}
