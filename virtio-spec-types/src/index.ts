// virtio 1.2 constants and struct layouts shared by the device model and its tests.
//
// Every value is re-exported as a plain property, not through `export *`:
// TypeScript compiles `export *` and `export { x } from` to CommonJS getters,
// and the device reads these constants on the per-packet path, where a getter
// call per read costs. test/virtio-spec-types.test.ts checks that every
// export of the modules below is here, as a data property.
import * as status from './status';
import * as features from './features';
import * as ring from './ring';
import * as net from './net';
import * as pci from './pci';

export type { VirtioFeatureBit } from './features';
export type { RingEventFlag } from './ring';
export type { NetFeatureBit } from './net';

export const {
  DeviceStatus,
} = status;
export const {
  VirtioFeature, FEATURE_BIT_MAX, featureBit, featureMask, hasFeature, featureWord, withFeatureWord,
} = features;
export const {
  QUEUE_SIZE_MAX, DescFlags, SplitDesc, SplitAvail, SplitUsed, VIRTQ_AVAIL_F_NO_INTERRUPT,
  VIRTQ_USED_F_NO_NOTIFY, SplitAlign, splitDescTableSize, splitAvailSize, splitUsedSize, splitUsedEventOffset,
  splitAvailEventOffset, PackedDesc, PackedDescFlags, EventSuppression, RingEventFlags, PackedAlign,
  packedDescRingSize,
} = ring;
export const {
  VIRTIO_ID_NET, NetFeature, NetConfig, NetStatus, NET_SPEED_UNKNOWN, NetDuplex, NetQueuePairs, NetMtu,
  netRxQueueIndex, netTxQueueIndex, netCtrlQueueIndex, NetHdr, NetHdrFlags, NetGsoType, NetHashType,
  NetHashReport, NetCtrlHdr, NetCtrlAck, NetCtrlClass, NetCtrlRx, NetCtrlMac, NetCtrlVlan, NetCtrlAnnounce,
  NetCtrlMq, NetRssConfig, NetCtrlGuestOffloads, NetCtrlNotfCoal,
} = net;
export const {
  VIRTIO_PCI_VENDOR_ID, VIRTIO_PCI_MODERN_DEVICE_ID_BASE, VIRTIO_PCI_DEVICE_ID_LAST,
  VIRTIO_PCI_MODERN_REVISION, VIRTIO_PCI_SUBSYSTEM_VENDOR_ID, VIRTIO_PCI_MIN_SUBSYSTEM_ID, virtioPciDeviceId,
  PciBaseClass, PciNetworkSubclass, PciBridgeSubclass, PciCapabilityId, VirtioPciCapType, VirtioPciCap,
  VirtioPciCap64, VirtioPciNotifyCap, VirtioPciCfgCap, VirtioPciCommonCfg, VirtioPciIsr, VIRTIO_MSI_NO_VECTOR,
  VIRTIO_PCI_MAX_MSIX_VECTORS, MsixCap, MsixControl, MSIX_BIR_MASK, MsixTableEntry, MSIX_VECTOR_CONTROL_MASK,
  MSIX_PBA_ENTRY_SIZE, MSIX_MAX_VECTORS,
} = pci;
