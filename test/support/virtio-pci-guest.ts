// Test harness for the PCI and virtio-pci tests: a fake virtio device that
// records what the transport asks of it, an interrupt sink that records
// what the function sends, and a "guest" that talks to the bus only the way
// a driver can: port I/O on 0xCF8/0xCFC and loads/stores at BAR addresses.
import {
  DeviceStatus,
  VirtioFeature,
  VirtioPciCap,
  VirtioPciCapType,
  VirtioPciCommonCfg,
  VirtioPciNotifyCap,
  featureMask,
} from 'virtio-spec-types';
import { GuestMemory } from '../../src/memory/guest-memory';
import { loadLe, storeLe } from '../../src/pci/access';
import { PCI_CONFIG_ADDRESS_PORT, PCI_CONFIG_DATA_PORT, encodeConfigAddress } from '../../src/pci/config-address';
import { PciHeader } from '../../src/pci/config-header';
import type { InterruptSink } from '../../src/pci/interrupt-sink';
import { PciBus } from '../../src/pci/pci-bus';
import type { DeviceContext, QueueConfig, VirtioDevice } from '../../src/virtio/device';
import { VirtioPciDevice, type VirtioPciOptions } from '../../src/virtio/pci/virtio-pci-device';

export const NET_DEVICE_ID = 1;
/** A feature bit in the device-specific range (virtio-net MAC) for negotiation tests. */
export const DEVICE_FEATURE_BIT = 5;

export interface FakeDeviceOptions {
  readonly queueCount?: number;
  readonly queueMaxSize?: number;
  readonly features?: bigint;
  readonly configSize?: number;
  /** Give the device resetQueue/enableQueue (needed for VIRTIO_F_RING_RESET). */
  readonly queueReset?: boolean;
}

export class FakeDevice implements VirtioDevice {
  readonly deviceId = NET_DEVICE_ID;
  readonly queueCount: number;
  readonly queueMaxSize: number;
  readonly deviceFeatures: bigint;
  readonly configSize: number;
  configGeneration = 0;
  readonly config: Uint8Array;
  /** Whether setDriverFeatures accepts. */
  accept = true;
  /** Make the next call of this name throw. */
  throwOn: string | undefined;
  readonly calls: string[] = [];
  readonly notifies: number[] = [];
  readonly configWrites: [number, number, number][] = [];
  acceptedFeatures: bigint | undefined;
  activatedQueues: readonly QueueConfig[] | undefined;
  ctx: DeviceContext | undefined;
  readonly queueResets: number[] = [];
  readonly lateEnables: QueueConfig[] = [];
  resetQueue?: (index: number) => void;
  enableQueue?: (queue: QueueConfig) => void;

  constructor(options: FakeDeviceOptions = {}) {
    this.queueCount = options.queueCount ?? 3;
    this.queueMaxSize = options.queueMaxSize ?? 256;
    this.deviceFeatures =
      options.features ?? featureMask(VirtioFeature.VERSION_1, VirtioFeature.RING_PACKED, VirtioFeature.EVENT_IDX, DEVICE_FEATURE_BIT);
    this.configSize = options.configSize ?? 12;
    this.config = new Uint8Array(this.configSize).map((_, i) => 0x10 + i);
    if (options.queueReset) {
      this.resetQueue = (index) => {
        this.check('resetQueue');
        this.queueResets.push(index);
      };
      this.enableQueue = (queue) => {
        this.check('enableQueue');
        this.lateEnables.push(queue);
      };
    }
  }

  private check(name: string): void {
    this.calls.push(name);
    if (this.throwOn === name) {
      this.throwOn = undefined;
      throw new Error(`fake device: ${name} failed`);
    }
  }

  readConfig(offset: number, size: 1 | 2 | 4): number {
    this.check('readConfig');
    return loadLe(this.config, offset, size);
  }

  writeConfig(offset: number, size: 1 | 2 | 4, value: number): void {
    this.check('writeConfig');
    this.configWrites.push([offset, size, value]);
  }

  setDriverFeatures(features: bigint): boolean {
    this.check('setDriverFeatures');
    if (this.accept) this.acceptedFeatures = features;
    return this.accept;
  }

  activate(queues: readonly QueueConfig[], ctx: DeviceContext): void {
    this.activatedQueues = queues;
    this.ctx = ctx;
    this.check('activate');
  }

  queueNotify(index: number): void {
    this.check('queueNotify');
    this.notifies.push(index);
  }

  reset(): void {
    this.check('reset');
    this.ctx = undefined;
    this.activatedQueues = undefined;
    this.acceptedFeatures = undefined;
  }
}

export class RecordingSink implements InterruptSink {
  readonly msis: { address: number; data: number }[] = [];
  level = false;
  readonly levels: boolean[] = [];

  msi(address: number, data: number): void {
    this.msis.push({ address, data });
  }

  intx(level: boolean): void {
    this.level = level;
    this.levels.push(level);
  }
}

/** A driver's-eye view of the bus: only port I/O and memory accesses. */
export class PciGuest {
  constructor(readonly bus: PciBus) {}

  outl(port: number, value: number): boolean {
    const d = new Uint8Array(4);
    storeLe(d, value);
    return this.bus.pioWrite(port, d);
  }

  out(port: number, size: number, value: number): boolean {
    const d = new Uint8Array(size);
    storeLe(d, value);
    return this.bus.pioWrite(port, d);
  }

  in(port: number, size: number): number | undefined {
    const d = new Uint8Array(size);
    return this.bus.pioRead(port, d) ? loadLe(d) : undefined;
  }

  /** Configuration read through mechanism #1, any width at any offset within a DWORD. */
  cfgRead(device: number, offset: number, size: 1 | 2 | 4, fn = 0): number {
    this.outl(PCI_CONFIG_ADDRESS_PORT, encodeConfigAddress({ bus: 0, device, function: fn, register: offset & 0xfc }));
    return this.in(PCI_CONFIG_DATA_PORT + (offset & 3), size) ?? -1;
  }

  cfgWrite(device: number, offset: number, size: 1 | 2 | 4, value: number, fn = 0): void {
    this.outl(PCI_CONFIG_ADDRESS_PORT, encodeConfigAddress({ bus: 0, device, function: fn, register: offset & 0xfc }));
    this.out(PCI_CONFIG_DATA_PORT + (offset & 3), size, value);
  }

  read(address: number, size: number): number | undefined {
    const d = new Uint8Array(size);
    return this.bus.mmioRead(address, d) ? loadLe(d) : undefined;
  }

  write(address: number, size: number, value: number): boolean {
    const d = new Uint8Array(size);
    if (size === 8) {
      storeLe(d, value % 0x1_0000_0000, 0, 4);
      storeLe(d, Math.floor(value / 0x1_0000_0000), 4, 4);
    } else {
      storeLe(d, value);
    }
    return this.bus.mmioWrite(address, d);
  }

  /** Follows cap_next from the capabilities pointer: [offset, id] pairs. */
  capabilityList(device: number): [number, number][] {
    const out: [number, number][] = [];
    let at = this.cfgRead(device, PciHeader.CAPABILITIES_POINTER, 1) & 0xfc;
    while (at !== 0 && out.length < 48) {
      out.push([at, this.cfgRead(device, at, 1)]);
      at = this.cfgRead(device, at + 1, 1) & 0xfc;
    }
    return out;
  }

  /** The 64-bit memory BAR `index` address as the guest reads it. */
  barAddress(device: number, index: number): number {
    const lo = this.cfgRead(device, PciHeader.BAR0 + 4 * index, 4);
    const hi = this.cfgRead(device, PciHeader.BAR0 + 4 * index + 4, 4);
    return hi * 0x1_0000_0000 + ((lo & 0xfffffff0) >>> 0);
  }
}

/** Guest-physical addresses of the virtio structures, found the way a driver does (§4.1.4). */
export interface VirtioStructures {
  readonly common: number;
  readonly notify: number;
  readonly notifyMultiplier: number;
  readonly isr: number;
  readonly device: number;
  readonly pciCfgCap: number;
}

export function findVirtioStructures(guest: PciGuest, device: number): VirtioStructures {
  const found = new Map<number, number>();
  let multiplier = 0;
  let pciCfgCap = 0;
  for (const [at, id] of guest.capabilityList(device)) {
    if (id !== 0x09) continue;
    const type = guest.cfgRead(device, at + VirtioPciCap.CFG_TYPE, 1);
    if (found.has(type)) continue;
    const bar = guest.cfgRead(device, at + VirtioPciCap.BAR, 1);
    const offset = guest.cfgRead(device, at + VirtioPciCap.OFFSET, 4);
    found.set(type, guest.barAddress(device, bar) + offset);
    if (type === VirtioPciCapType.NOTIFY_CFG) multiplier = guest.cfgRead(device, at + VirtioPciNotifyCap.NOTIFY_OFF_MULTIPLIER, 4);
    if (type === VirtioPciCapType.PCI_CFG) pciCfgCap = at;
  }
  return {
    common: found.get(VirtioPciCapType.COMMON_CFG) ?? -1,
    notify: found.get(VirtioPciCapType.NOTIFY_CFG) ?? -1,
    notifyMultiplier: multiplier,
    isr: found.get(VirtioPciCapType.ISR_CFG) ?? -1,
    device: found.get(VirtioPciCapType.DEVICE_CFG) ?? -1,
    pciCfgCap,
  };
}

export interface VirtioPciSetup {
  readonly bus: PciBus;
  readonly fake: FakeDevice;
  readonly vpci: VirtioPciDevice;
  readonly sink: RecordingSink;
  readonly guest: PciGuest;
  /** PCI device number of the virtio function. */
  readonly slot: number;
  readonly s: VirtioStructures;
  /** Common configuration accessors at the guest-visible address. */
  readonly common: {
    read(offset: number, size: number): number;
    write(offset: number, size: number, value: number): void;
  };
}

export const MMIO32 = { base: 0xc000_0000, size: 0x1000_0000 };

export function setupVirtioPci(
  deviceOptions: FakeDeviceOptions = {},
  pciOptions: Partial<Omit<VirtioPciOptions, 'memory'>> = {},
): VirtioPciSetup {
  const bus = new PciBus({ mmio32: MMIO32 });
  const fake = new FakeDevice(deviceOptions);
  const memory = new GuestMemory([{ gpa: 0, bytes: new Uint8Array(0x10000) }]);
  const vpci = new VirtioPciDevice(fake, { memory, ...pciOptions });
  const sink = new RecordingSink();
  const address = bus.add(vpci.pci, { interrupts: sink, interruptLine: 11 });
  const guest = new PciGuest(bus);
  const s = findVirtioStructures(guest, address.device);
  return {
    bus,
    fake,
    vpci,
    sink,
    guest,
    slot: address.device,
    s,
    common: {
      read: (offset, size) => guest.read(s.common + offset, size) ?? -1,
      write: (offset, size, value) => {
        guest.write(s.common + offset, size, value);
      },
    },
  };
}

/** §3.1.1 steps 1-5: ACKNOWLEDGE, DRIVER, write the features, FEATURES_OK. Returns the status read back. */
export function negotiate(t: VirtioPciSetup, features: bigint): number {
  const C = VirtioPciCommonCfg;
  t.common.write(C.DEVICE_STATUS, 1, DeviceStatus.ACKNOWLEDGE);
  t.common.write(C.DEVICE_STATUS, 1, DeviceStatus.ACKNOWLEDGE | DeviceStatus.DRIVER);
  for (let select = 0; select < 2; select++) {
    t.common.write(C.DRIVER_FEATURE_SELECT, 4, select);
    t.common.write(C.DRIVER_FEATURE, 4, Number((features >> BigInt(32 * select)) & 0xffffffffn));
  }
  t.common.write(C.DEVICE_STATUS, 1, DeviceStatus.ACKNOWLEDGE | DeviceStatus.DRIVER | DeviceStatus.FEATURES_OK);
  return t.common.read(C.DEVICE_STATUS, 1);
}

export interface QueueSetup {
  readonly size?: number;
  readonly desc: number;
  readonly driver: number;
  readonly device: number;
  readonly vector?: number;
}

/** §4.1.5.1.3 virtqueue configuration for queue `index`, then queue_enable = 1. */
export function setupQueue(t: VirtioPciSetup, index: number, q: QueueSetup): void {
  const C = VirtioPciCommonCfg;
  t.common.write(C.QUEUE_SELECT, 2, index);
  if (q.size !== undefined) t.common.write(C.QUEUE_SIZE, 2, q.size);
  if (q.vector !== undefined) t.common.write(C.QUEUE_MSIX_VECTOR, 2, q.vector);
  t.common.write(C.QUEUE_DESC_LO, 4, q.desc % 0x1_0000_0000);
  t.common.write(C.QUEUE_DESC_HI, 4, Math.floor(q.desc / 0x1_0000_0000));
  t.common.write(C.QUEUE_DRIVER_LO, 4, q.driver % 0x1_0000_0000);
  t.common.write(C.QUEUE_DRIVER_HI, 4, Math.floor(q.driver / 0x1_0000_0000));
  t.common.write(C.QUEUE_DEVICE_LO, 4, q.device % 0x1_0000_0000);
  t.common.write(C.QUEUE_DEVICE_HI, 4, Math.floor(q.device / 0x1_0000_0000));
  t.common.write(C.QUEUE_ENABLE, 2, 1);
}

export const FULL_STATUS = DeviceStatus.ACKNOWLEDGE | DeviceStatus.DRIVER | DeviceStatus.FEATURES_OK;

/** Sets DRIVER_OK after a successful negotiate(). */
export function driverOk(t: VirtioPciSetup): void {
  t.common.write(VirtioPciCommonCfg.DEVICE_STATUS, 1, FULL_STATUS | DeviceStatus.DRIVER_OK);
}

/** Enables MSI-X in the function's MSI-X capability (Function Mask clear) and programs vectors 0..n-1. */
export function enableMsix(t: VirtioPciSetup, vectors: number): void {
  const cap = t.guest.capabilityList(t.slot).find(([, id]) => id === 0x11)?.[0] ?? 0;
  const table = t.vpci.layout.msixTable.offset + t.guest.barAddress(t.slot, 0);
  for (let v = 0; v < vectors; v++) {
    t.guest.write(table + 16 * v, 4, 0xfee0_0000 + (v << 12));
    t.guest.write(table + 16 * v + 4, 4, 0);
    t.guest.write(table + 16 * v + 8, 4, 0x4000 + v);
    t.guest.write(table + 16 * v + 12, 4, 0);
  }
  t.guest.cfgWrite(t.slot, cap + 2, 2, 0x8000);
}
