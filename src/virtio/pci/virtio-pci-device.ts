// §4.1: a virtio device presented as a modern (non-transitional) virtio-pci
// function. One 64-bit memory BAR (BAR 0) holds the common configuration,
// ISR, device configuration and notification structures and the MSI-X
// table and PBA; the capability list points the driver at each of them and
// offers the PCI_CFG window. Attach `pci` to a PciBus.
import {
  PciBaseClass,
  PciNetworkSubclass,
  VIRTIO_PCI_MAX_MSIX_VECTORS,
  VIRTIO_PCI_MIN_SUBSYSTEM_ID,
  VIRTIO_PCI_MODERN_REVISION,
  VIRTIO_PCI_SUBSYSTEM_VENDOR_ID,
  VIRTIO_PCI_VENDOR_ID,
  QUEUE_SIZE_MAX,
  VirtioPciCapType,
  VirtioPciNotifyCap,
  VirtioPciCap,
  virtioPciDeviceId,
} from 'virtio-spec-types';
import type { GuestMemory } from '../../memory/guest-memory';
import type { AccessSize } from '../../pci/access';
import { PciInterruptPin } from '../../pci/config-header';
import { MsixCapability } from '../../pci/msix';
import { type PciClassCode, PciFunction } from '../../pci/pci-function';
import type { DeviceContext, VirtioDevice } from '../device';
import { NOTIFY_OFF_MULTIPLIER, VIRTIO_PCI_BAR, type VirtioPciBarLayout, inRegion, virtioPciBarLayout } from './bar-layout';
import { addVirtioCapability } from './capabilities';
import { CommonConfig } from './common-config';
import { VirtioPciInterrupts } from './interrupts';
import { NotifyRegion } from './notify';
import { PciCfgWindow } from './pci-cfg-window';
import { pciOfferedFeatures } from './transport-features';

export interface VirtioPciOptions {
  /** Guest memory handed to the device at activation. */
  readonly memory: GuestMemory;
  /** MSI-X table size; default one vector per queue plus one for configuration changes. */
  readonly msixVectors?: number;
  /** PCI subsystem device id, >= 0x40 (§4.1.2.1); default 0x40. */
  readonly subsystemId?: number;
  /** PCI class code; default from the virtio device type. */
  readonly classCode?: PciClassCode;
}

/** Class codes for device types whose PCI class is obvious; others are "unassigned". */
function defaultClassCode(deviceId: number): PciClassCode {
  switch (deviceId) {
    case 1:
      return { base: PciBaseClass.NETWORK, sub: PciNetworkSubclass.ETHERNET };
    case 2:
      return { base: PciBaseClass.MASS_STORAGE, sub: 0x80 };
    case 3:
      return { base: PciBaseClass.COMMUNICATION, sub: 0x80 };
    default:
      return { base: PciBaseClass.UNASSIGNED, sub: 0 };
  }
}

function checkDevice(device: VirtioDevice): void {
  const name = `virtio device ${device.deviceId}`;
  if (!Number.isInteger(device.deviceId) || device.deviceId < 1 || virtioPciDeviceId(device.deviceId) > 0x107f) {
    throw new Error(`${name}: deviceId has no modern PCI device id`);
  }
  if (!Number.isInteger(device.queueCount) || device.queueCount < 0 || device.queueCount > 0xffff) {
    throw new Error(`${name}: queueCount ${device.queueCount} is not 0..65535`);
  }
  for (const max of [device.queueMaxSize, ...(device.queueMaxSizes ?? [])]) {
    if (!Number.isInteger(max) || max < 1 || max > QUEUE_SIZE_MAX || (max & (max - 1)) !== 0) {
      throw new Error(`${name}: queueMaxSize ${max} is not a power of 2 in 1..${QUEUE_SIZE_MAX}`);
    }
  }
  if (device.queueMaxSizes && device.queueMaxSizes.length > device.queueCount) {
    throw new Error(`${name}: ${device.queueMaxSizes.length} queue sizes for ${device.queueCount} queues`);
  }
  if (!Number.isInteger(device.configSize) || device.configSize < 0 || device.configSize > 0x1000) {
    throw new Error(`${name}: configSize ${device.configSize} is not 0..4096`);
  }
}

export class VirtioPciDevice {
  readonly pci: PciFunction;
  readonly msix: MsixCapability;
  readonly layout: VirtioPciBarLayout;
  private readonly common: CommonConfig;
  private readonly interrupts: VirtioPciInterrupts;
  private readonly notify: NotifyRegion;
  private readonly vectorMappingListeners: Array<() => void> = [];
  private readonly memory: GuestMemory;
  /** Bumped on every reset: contexts from earlier activations go quiet. */
  private epoch = 0;
  private readonly driverOkListeners: (() => void)[] = [];

  constructor(
    readonly device: VirtioDevice,
    options: VirtioPciOptions,
  ) {
    checkDevice(device);
    const offered = pciOfferedFeatures(device);
    const vectors = options.msixVectors ?? device.queueCount + 1;
    if (!Number.isInteger(vectors) || vectors < 1 || vectors > VIRTIO_PCI_MAX_MSIX_VECTORS) {
      throw new Error(`msixVectors: ${vectors} is not 1..${VIRTIO_PCI_MAX_MSIX_VECTORS}`);
    }
    const subsystemId = options.subsystemId ?? VIRTIO_PCI_MIN_SUBSYSTEM_ID;
    if (!Number.isInteger(subsystemId) || subsystemId < VIRTIO_PCI_MIN_SUBSYSTEM_ID || subsystemId > 0xffff) {
      throw new Error(`subsystemId: 0x${subsystemId.toString(16)} is not 0x40..0xffff`);
    }
    this.memory = options.memory;
    this.layout = virtioPciBarLayout(device.queueCount, device.configSize, vectors);

    this.pci = new PciFunction(
      {
        vendorId: VIRTIO_PCI_VENDOR_ID,
        deviceId: virtioPciDeviceId(device.deviceId),
        revisionId: VIRTIO_PCI_MODERN_REVISION,
        classCode: options.classCode ?? defaultClassCode(device.deviceId),
        subsystemVendorId: VIRTIO_PCI_SUBSYSTEM_VENDOR_ID,
        subsystemId,
        interruptPin: PciInterruptPin.INTA,
      },
      [
        {
          index: VIRTIO_PCI_BAR,
          kind: 'memory64',
          // Not prefetchable: reading the ISR clears it.
          prefetchable: false,
          size: this.layout.barSize,
          region: { read: (o, s) => this.barRead(o, s), write: (o, s, v) => this.barWrite(o, s, v) },
        },
      ],
    );

    const L = this.layout;
    const structures = [
      { cfgType: VirtioPciCapType.COMMON_CFG, region: L.common },
      { cfgType: VirtioPciCapType.NOTIFY_CFG, region: L.notify },
      { cfgType: VirtioPciCapType.ISR_CFG, region: L.isr },
      ...(L.device ? [{ cfgType: VirtioPciCapType.DEVICE_CFG, region: L.device }] : []),
    ];
    for (const s of structures) {
      const notify = s.cfgType === VirtioPciCapType.NOTIFY_CFG;
      const at = addVirtioCapability(this.pci, {
        cfgType: s.cfgType,
        bar: VIRTIO_PCI_BAR,
        offset: s.region.offset,
        length: s.region.length,
        extraLength: notify ? VirtioPciNotifyCap.SIZE - VirtioPciCap.SIZE : 0,
      });
      if (notify) this.pci.config.set32(at + VirtioPciNotifyCap.NOTIFY_OFF_MULTIPLIER, NOTIFY_OFF_MULTIPLIER);
    }
    // Lives on through its capability hooks.
    new PciCfgWindow(
      this.pci,
      structures.map((s) => ({ bar: VIRTIO_PCI_BAR, ...s.region })),
    );
    this.msix = new MsixCapability(this.pci, {
      vectors,
      tableBar: VIRTIO_PCI_BAR,
      tableOffset: L.msixTable.offset,
      pbaBar: VIRTIO_PCI_BAR,
      pbaOffset: L.msixPba.offset,
    });

    this.interrupts = new VirtioPciInterrupts(this.pci, this.msix);
    this.common = new CommonConfig(
      device,
      { offeredFeatures: offered, msixVectors: vectors },
      {
        createContext: (features) => this.createContext(features),
        resetTransport: () => {
          this.epoch += 1;
          this.interrupts.reset();
        },
        signalConfigChange: () => this.interrupts.config(this.common.configVector),
        vectorMappingChanged: () => {
          for (const l of this.vectorMappingListeners) l();
        },
      },
    );
    this.notify = new NotifyRegion(device.queueCount, (q) => this.common.queueNotify(q));
  }

  // ---- for the VMM ----

  /** Called whenever a queue's or the config's MSI-X vector changes (driver writes, reset): irqfds follow it. */
  onVectorMappingChanged(listener: () => void): void {
    this.vectorMappingListeners.push(listener);
  }

  /** Offset in BAR 0 of queue `index`'s notify address (for a KVM ioeventfd at BAR base + this, 2 bytes). */
  notifyOffset(index: number): number {
    return this.layout.notify.offset + NotifyRegion.offsetOf(index);
  }

  /** Current device_status (§2.1). */
  get status(): number {
    return this.common.deviceStatus;
  }

  /** MSI-X vector of a queue's used-buffer notifications (NO_VECTOR if unmapped). */
  queueVector(index: number): number {
    return this.common.queueVector(index);
  }

  /** MSI-X vector of configuration change notifications. */
  get configVector(): number {
    return this.common.configVector;
  }

  /** Device exceptions caught by the transport (each marked DEVICE_NEEDS_RESET). */
  get deviceErrors(): number {
    return this.common.deviceErrors;
  }

  get lastDeviceError(): unknown {
    return this.common.lastDeviceError;
  }

  /**
   * A used-buffer notification for queue `index` raised on the device's
   * behalf (the VMM relaying an I/O worker's call eventfd while MSI-X is
   * off): the same path as the device's own, ignored unless active.
   */
  signalQueue(index: number): void {
    if (this.common.isActive && this.common.isQueueEnabled(index)) this.interrupts.queue(this.common.queueVector(index));
  }

  // ---- device context ----

  /** Called each time the driver's DRIVER_OK activates the device. */
  onDriverOk(listener: () => void): void {
    this.driverOkListeners.push(listener);
  }

  private createContext(features: bigint): DeviceContext {
    const epoch = this.epoch;
    for (const l of this.driverOkListeners) l();
    return {
      memory: this.memory,
      features,
      signalUsed: (queueIndex: number) => {
        if (epoch === this.epoch && this.common.isQueueEnabled(queueIndex)) {
          this.interrupts.queue(this.common.queueVector(queueIndex));
        }
      },
      signalConfig: () => {
        if (epoch === this.epoch) this.interrupts.config(this.common.configVector);
      },
      markNeedsReset: () => {
        if (epoch === this.epoch) this.common.markNeedsReset();
      },
    };
  }

  // ---- BAR 0 ----

  private barRead(offset: number, size: AccessSize): number {
    const L = this.layout;
    if (inRegion(L.common, offset, size)) return this.common.read(offset - L.common.offset, size);
    if (inRegion(L.isr, offset, size)) return size === 1 ? this.interrupts.readIsr() : 0;
    if (inRegion(L.device, offset, size)) {
      const at = offset - L.device.offset;
      return this.common.guard(() => this.device.readConfig(at, size), 0);
    }
    if (inRegion(L.notify, offset, size)) return this.notify.read();
    if (inRegion(L.msixTable, offset, size)) return this.msix.readTable(offset - L.msixTable.offset, size);
    if (inRegion(L.msixPba, offset, size)) return this.msix.readPba(offset - L.msixPba.offset, size);
    return 0;
  }

  private barWrite(offset: number, size: AccessSize, value: number): void {
    const L = this.layout;
    if (inRegion(L.common, offset, size)) {
      this.common.write(offset - L.common.offset, size, value);
    } else if (inRegion(L.device, offset, size)) {
      const at = offset - L.device.offset;
      this.common.guard(() => this.device.writeConfig(at, size, value), undefined);
    } else if (inRegion(L.notify, offset, size)) {
      this.notify.write(offset - L.notify.offset, size);
    } else if (inRegion(L.msixTable, offset, size)) {
      this.msix.writeTable(offset - L.msixTable.offset, size, value);
    }
    // ISR and PBA are read-only; gaps between structures ignore writes.
  }
}
