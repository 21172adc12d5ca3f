// Builds what a test or benchmark needs around the driver: guest RAM, a PCI
// bus with the virtio-pci function on it, the interrupt recorder, and (for
// virtio-net) the device over loopback or any other backend queues.
import type { NetBackendQueue } from '../backend/net-backend';
import { LoopbackQueue, type LoopbackOptions } from '../backend/loopback/loopback-queue';
import { PciBus } from '../pci/pci-bus';
import type { VirtioDevice } from '../virtio/device';
import { VirtioNetDevice } from '../virtio/net/virtio-net-device';
import { VirtioPciDevice } from '../virtio/pci/virtio-pci-device';
import { GuestRam } from './guest-ram';
import { InterruptRecorder } from './interrupt-recorder';
import { VirtioNetTestDriver } from './virtio-net-test-driver';

/** The 32-bit MMIO window BARs are placed in (above the test RAM). */
export const TEST_MMIO32 = { base: 0xc000_0000, size: 0x1000_0000 };
export const TEST_MAC = Uint8Array.of(0x52, 0x54, 0x00, 0x12, 0x34, 0x56);

export interface PciRig {
  readonly ram: GuestRam;
  readonly bus: PciBus;
  readonly irq: InterruptRecorder;
  readonly vpci: VirtioPciDevice;
  readonly driver: VirtioNetTestDriver;
}

export interface PciRigOptions {
  readonly ram?: GuestRam;
  readonly ramSize?: number;
  readonly msixVectors?: number;
  readonly pollDevice?: () => void;
}

/** Any virtio device behind virtio-pci on a fresh bus, and a driver that found it. */
export function attachVirtioDevice(device: VirtioDevice, o: PciRigOptions = {}): PciRig {
  const ram = o.ram ?? new GuestRam(o.ramSize);
  const bus = new PciBus({ mmio32: TEST_MMIO32 });
  const vpci = new VirtioPciDevice(device, { memory: ram.memory, ...(o.msixVectors !== undefined ? { msixVectors: o.msixVectors } : {}) });
  const irq = new InterruptRecorder();
  bus.add(vpci.pci, { interrupts: irq, interruptLine: 11 });
  const driver = new VirtioNetTestDriver({ bus, ram, interrupts: irq, ...(o.pollDevice ? { pollDevice: o.pollDevice } : {}) });
  return { ram, bus, irq, vpci, driver };
}

export interface NetRigOptions extends Omit<PciRigOptions, 'pollDevice'> {
  /** Backend queues, one per queue pair; default `pairs` LoopbackQueues. */
  readonly backends?: readonly NetBackendQueue[];
  readonly pairs?: number;
  readonly loopback?: LoopbackOptions;
  readonly mac?: Uint8Array;
  readonly queueMaxSize?: number;
  readonly mtu?: number;
  readonly offloads?: boolean;
  readonly packed?: boolean;
}

export interface NetRig extends PciRig {
  readonly device: VirtioNetDevice;
  readonly backends: readonly NetBackendQueue[];
  /** The backends when they are loopbacks (empty otherwise). */
  readonly loopbacks: readonly LoopbackQueue[];
}

export function createNetRig(o: NetRigOptions = {}): NetRig {
  const backends = o.backends ?? Array.from({ length: o.pairs ?? 1 }, () => new LoopbackQueue(o.loopback));
  const device = new VirtioNetDevice({
    backends,
    mac: o.mac ?? TEST_MAC,
    ...(o.queueMaxSize !== undefined ? { queueMaxSize: o.queueMaxSize } : {}),
    ...(o.mtu !== undefined ? { mtu: o.mtu } : {}),
    ...(o.offloads !== undefined ? { offloads: o.offloads } : {}),
    ...(o.packed !== undefined ? { packed: o.packed } : {}),
  });
  const rig = attachVirtioDevice(device, { ...o, pollDevice: () => device.pollBackends() });
  return { ...rig, device, backends, loopbacks: backends.filter((b): b is LoopbackQueue => b instanceof LoopbackQueue) };
}
