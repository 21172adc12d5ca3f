// The in-process test guest for virtio-net: see virtio-net-test-driver.ts.
export { BufferPool, splitLengths } from './buffer-pool';
export { CTRL_NO_ANSWER, ControlQueueDriver } from './control-queue';
export { DriverQueue, type DriverQueueOptions, type RingKind, type UsedElement } from './driver-queue';
export { type IpFrame, type IpFrameOptions, PROTO_TCP, PROTO_UDP, ipFrame, patternPayload, pseudoHeaderSum, sum16 } from './ip-frames';
export { DEFAULT_RAM_BASE, DEFAULT_RAM_SIZE, GuestRam } from './guest-ram';
export { InterruptRecorder, type MsiEvent } from './interrupt-recorder';
export { MSI_ADDRESS_BASE, MSI_DATA_BASE, MsixDriver } from './msix-driver';
export { NET_HDR_SIZE, type NetHeader, netHeader, readNetHeader, writeNetHeader } from './net-header';
export { type AccessWidth, type PciCapabilityEntry, PciGuestPort, type PciLocation } from './pci-guest-port';
export { DEFAULT_RX_BUFFER, type ReceivedFrame, type RxPostOptions, RxQueue } from './rx-queue';
export { SplitBufferRing } from './split-buffer-ring';
export { type NetRig, type NetRigOptions, type PciRig, type PciRigOptions, TEST_MAC, TEST_MMIO32, attachVirtioDevice, createNetRig } from './test-rig';
export { type SendOptions, TxQueue } from './tx-queue';
export {
  type BringUpOptions,
  type BringUpResult,
  CONFIG_VECTOR,
  type NegotiationResult,
  type QueueSetupOptions,
  type VirtioNetDriverOptions,
  VirtioDriverError,
  VirtioNetTestDriver,
} from './virtio-net-test-driver';
export { type MsixLocation, type VirtioPciLocations, VirtioProbeError, probeVirtioPci } from './virtio-pci-probe';
