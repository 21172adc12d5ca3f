// A virtio-net driver that plays the guest in-process. It reaches the device
// only the way a guest can: PCI configuration cycles through 0xCF8/0xCFC,
// loads and stores at the addresses the BARs decode, its own RAM for rings
// and buffers, and interrupts arriving at its InterruptSink. It follows the
// initialisation sequence of §3.1.1 and the virtio-pci specifics of §4.1.5,
// then sends and receives frames (§5.1.6) and issues control commands
// (§5.1.6.5). The device services kicks inline; poll() stands in for the
// device's own backend polling (device.pollBackends()).
import {
  DeviceStatus,
  NetConfig,
  NetCtrlAnnounce,
  NetCtrlClass,
  NetCtrlMac,
  NetCtrlMq,
  NetFeature,
  VIRTIO_MSI_NO_VECTOR,
  VIRTIO_PCI_VENDOR_ID,
  VirtioFeature,
  VirtioPciCommonCfg as C,
  featureBit,
  hasFeature,
  virtioPciDeviceId,
} from 'virtio-spec-types';
import { PciCommand, PciHeader } from '../pci/config-header';
import type { PciBus } from '../pci/pci-bus';
import { ControlQueueDriver } from './control-queue';
import { DriverQueue, type RingKind } from './driver-queue';
import type { GuestRam } from './guest-ram';
import type { InterruptRecorder } from './interrupt-recorder';
import { MsixDriver } from './msix-driver';
import { type AccessWidth, PciGuestPort, type PciLocation } from './pci-guest-port';
import { type ReceivedFrame, type RxPostOptions, RxQueue } from './rx-queue';
import { type SendOptions, TxQueue } from './tx-queue';
import { type VirtioPciLocations, probeVirtioPci } from './virtio-pci-probe';

export interface VirtioNetDriverOptions {
  readonly bus: PciBus;
  readonly ram: GuestRam;
  readonly interrupts: InterruptRecorder;
  /** Lets the device look at its backends (VirtioNetDevice.pollBackends); poll() calls it. */
  readonly pollDevice?: () => void;
  /** PCI ids to look for (default: the modern virtio-net function, 1af4:1041). */
  readonly vendorId?: number;
  readonly deviceId?: number;
}

export interface NegotiationResult {
  /** FEATURES_OK read back set (§3.1.1 step 6). */
  readonly accepted: boolean;
  /** The features written. */
  readonly features: bigint;
  /** What the device offered. */
  readonly offered: bigint;
  readonly status: number;
}

export interface QueueSetupOptions {
  /** Queue Size (default: the device's maximum). */
  readonly size?: number;
  /** MSI-X vector, or VIRTIO_MSI_NO_VECTOR. */
  readonly vector?: number;
}

export interface BringUpOptions {
  /**
   * Features the driver can use. It accepts those the device offers (plus
   * VERSION_1), unless `exact`, which writes `features` as they are.
   */
  readonly features: bigint;
  readonly exact?: boolean;
  /** Queue Size for every queue (default: the device's maximum). */
  readonly queueSize?: number;
  /** Queue pairs to set up (default: max_virtqueue_pairs when MQ was negotiated, else 1). */
  readonly pairs?: number;
  /** MSI-X with one vector per queue and vector 0 for configuration changes (default); false: INTx and the ISR. */
  readonly msix?: boolean;
  /** Receive chains posted on every pair after DRIVER_OK (default: as many default chains as fit); false for none. */
  readonly rx?: (RxPostOptions & { readonly count?: number }) | false;
  /** Ask for used-buffer notifications on every queue (default true). */
  readonly interrupts?: boolean;
}

export interface BringUpResult {
  /** FEATURES_OK stuck and DRIVER_OK is set. */
  readonly ok: boolean;
  readonly features: bigint;
  readonly status: number;
}

const FEATURE_WORDS = 4;
/** Config vector when MSI-X is on; queue i uses vector i + 1. */
export const CONFIG_VECTOR = 0;

export class VirtioDriverError extends Error {
  override name = 'VirtioDriverError';
}

export class VirtioNetTestDriver {
  readonly port: PciGuestPort;
  readonly pci: PciLocation;
  readonly loc: VirtioPciLocations;
  readonly msix: MsixDriver | undefined;
  readonly ram: GuestRam;
  readonly interrupts: InterruptRecorder;
  /** Negotiated features (0 until FEATURES_OK is accepted). */
  features = 0n;
  /** Virtqueues set up since the last reset, by index. */
  readonly queues: (DriverQueue | undefined)[] = [];
  /** Per queue pair. */
  readonly txQueues: TxQueue[] = [];
  readonly rxQueues: RxQueue[] = [];
  ctrl: ControlQueueDriver | undefined;
  private readonly pollDevice: (() => void) | undefined;
  private readonly notifyAddr: number[] = [];
  private readonly vectorOf: number[] = [];

  constructor(o: VirtioNetDriverOptions) {
    this.port = new PciGuestPort(o.bus);
    this.ram = o.ram;
    this.interrupts = o.interrupts;
    this.pollDevice = o.pollDevice;
    const vendor = o.vendorId ?? VIRTIO_PCI_VENDOR_ID;
    const device = o.deviceId ?? virtioPciDeviceId(1);
    const pci = this.port.findFunction(vendor, device);
    if (!pci) throw new VirtioDriverError(`no PCI function ${vendor.toString(16)}:${device.toString(16)} on bus 0`);
    this.pci = pci;
    // What an OS does before using a function: memory decoding and bus mastering (DMA, MSI writes) on.
    const cmd = this.port.configRead(pci, PciHeader.COMMAND, 2);
    this.port.configWrite(pci, PciHeader.COMMAND, 2, cmd | PciCommand.MEMORY_SPACE | PciCommand.BUS_MASTER);
    this.loc = probeVirtioPci(this.port, pci);
    this.msix = this.loc.msix ? new MsixDriver(this.port, pci, this.loc.msix, o.interrupts) : undefined;
  }

  // ---------------------------------------------------------------- registers

  readCommon(offset: number, size: AccessWidth): number {
    return this.port.mmioRead(this.loc.common + offset, size);
  }

  writeCommon(offset: number, size: AccessWidth, value: number): void {
    this.port.mmioWrite(this.loc.common + offset, size, value);
  }

  get status(): number {
    return this.readCommon(C.DEVICE_STATUS, 1);
  }

  /** Writes device_status as given (the driver's own bits; §2.1). */
  writeStatus(value: number): void {
    this.writeCommon(C.DEVICE_STATUS, 1, value);
  }

  /** Adds status bits to those set now and returns the status read back. */
  addStatus(bits: number): number {
    this.writeStatus((this.status & ~DeviceStatus.DEVICE_NEEDS_RESET) | bits);
    return this.status;
  }

  get needsReset(): boolean {
    return (this.status & DeviceStatus.DEVICE_NEEDS_RESET) !== 0;
  }

  /** §4.1.4.3.2: write 0, then wait until device_status reads 0. Forgets every queue. */
  reset(): void {
    this.writeStatus(0);
    for (let i = 0; i < 1000 && this.status !== 0; i++) this.poll();
    if (this.status !== 0) throw new VirtioDriverError(`device_status reads 0x${this.status.toString(16)} after a reset`);
    this.features = 0n;
    this.queues.length = 0;
    this.txQueues.length = 0;
    this.rxQueues.length = 0;
    this.notifyAddr.length = 0;
    this.vectorOf.length = 0;
    this.ctrl = undefined;
  }

  deviceFeatures(): bigint {
    let f = 0n;
    for (let w = 0; w < FEATURE_WORDS; w++) {
      this.writeCommon(C.DEVICE_FEATURE_SELECT, 4, w);
      f |= BigInt(this.readCommon(C.DEVICE_FEATURE, 4)) << BigInt(32 * w);
    }
    return f;
  }

  /** The driver_feature words as the device holds them. */
  driverFeatures(): bigint {
    let f = 0n;
    for (let w = 0; w < FEATURE_WORDS; w++) {
      this.writeCommon(C.DRIVER_FEATURE_SELECT, 4, w);
      f |= BigInt(this.readCommon(C.DRIVER_FEATURE, 4)) << BigInt(32 * w);
    }
    return f;
  }

  /**
   * §3.1.1 steps 1-6: reset, ACKNOWLEDGE, DRIVER, read the offer, write the
   * features (the wanted ones the device offers, plus VERSION_1; or exactly
   * `wanted` when `exact`), FEATURES_OK, and read it back.
   */
  negotiate(wanted: bigint, exact = false): NegotiationResult {
    this.reset();
    this.addStatus(DeviceStatus.ACKNOWLEDGE);
    this.addStatus(DeviceStatus.DRIVER);
    const offered = this.deviceFeatures();
    const features = exact ? wanted : (wanted | featureBit(VirtioFeature.VERSION_1)) & offered;
    for (let w = 0; w < FEATURE_WORDS; w++) {
      this.writeCommon(C.DRIVER_FEATURE_SELECT, 4, w);
      this.writeCommon(C.DRIVER_FEATURE, 4, Number((features >> BigInt(32 * w)) & 0xffff_ffffn));
    }
    const status = this.addStatus(DeviceStatus.FEATURES_OK);
    const accepted = (status & DeviceStatus.FEATURES_OK) !== 0;
    this.features = accepted ? features : 0n;
    return { accepted, features, offered, status };
  }

  has(bit: number): boolean {
    return hasFeature(this.features, bit);
  }

  get ringKind(): RingKind {
    return this.has(VirtioFeature.RING_PACKED) ? 'packed' : 'split';
  }

  /** Queues the device has (num_queues). */
  get numQueues(): number {
    return this.readCommon(C.NUM_QUEUES, 2);
  }

  /** Programs every MSI-X vector (unmasked), enables MSI-X, and maps configuration changes to CONFIG_VECTOR. */
  enableMsix(): void {
    const m = this.requireMsix();
    for (let v = 0; v < m.vectors; v++) m.program(v);
    m.functionMask(false);
    m.enable(true);
    this.setConfigVector(CONFIG_VECTOR);
  }

  /** §4.1.5.1.2: map configuration changes to `vector` and read back whether it stuck. */
  setConfigVector(vector: number): boolean {
    this.writeCommon(C.CONFIG_MSIX_VECTOR, 2, vector);
    return this.readCommon(C.CONFIG_MSIX_VECTOR, 2) === vector;
  }

  get configVector(): number {
    return this.readCommon(C.CONFIG_MSIX_VECTOR, 2);
  }

  /** §4.1.5.1.3: size, vector, areas, enable; returns the queue. */
  setupQueue(index: number, o: QueueSetupOptions = {}): DriverQueue {
    if (this.features === 0n) throw new VirtioDriverError('set up queues after FEATURES_OK');
    this.writeCommon(C.QUEUE_SELECT, 2, index);
    const max = this.readCommon(C.QUEUE_SIZE, 2);
    if (max === 0) throw new VirtioDriverError(`queue ${index} does not exist`);
    const size = o.size ?? max;
    if (size > max) throw new VirtioDriverError(`queue ${index}: size ${size} exceeds the device's ${max}`);
    this.writeCommon(C.QUEUE_SIZE, 2, size);
    const vector = o.vector ?? VIRTIO_MSI_NO_VECTOR;
    this.writeCommon(C.QUEUE_MSIX_VECTOR, 2, vector);
    if (this.readCommon(C.QUEUE_MSIX_VECTOR, 2) !== vector) throw new VirtioDriverError(`queue ${index}: MSI-X vector ${vector} did not stick`);
    // §4.1.4.4: the queue's notify address; the closure keeps it, so a stale queue object still kicks where it did.
    const notifyAt = this.loc.notify + this.readCommon(C.QUEUE_NOTIFY_OFF, 2) * this.loc.notifyMultiplier;
    this.notifyAddr[index] = notifyAt;
    const q = new DriverQueue({
      index,
      size,
      kind: this.ringKind,
      eventIdx: this.has(VirtioFeature.EVENT_IDX),
      ram: this.ram,
      notify: (i) => this.port.mmioWrite(notifyAt, 2, i),
    });
    const put64 = (lo: number, v: number): void => {
      this.writeCommon(lo, 4, v % 0x1_0000_0000);
      this.writeCommon(lo + 4, 4, Math.floor(v / 0x1_0000_0000));
    };
    put64(C.QUEUE_DESC_LO, q.descAddr);
    put64(C.QUEUE_DRIVER_LO, q.driverAddr);
    put64(C.QUEUE_DEVICE_LO, q.deviceAddr);
    this.writeCommon(C.QUEUE_ENABLE, 2, 1);
    if (this.readCommon(C.QUEUE_ENABLE, 2) !== 1) throw new VirtioDriverError(`queue ${index} did not enable`);
    this.queues[index] = q;
    this.vectorOf[index] = vector;
    return q;
  }

  /** Sets DRIVER_OK; returns the status read back. */
  driverOk(): number {
    return this.addStatus(DeviceStatus.DRIVER_OK);
  }

  /** The whole §3.1.1 sequence plus receive buffers; see BringUpOptions. */
  bringUp(o: BringUpOptions): BringUpResult {
    const n = this.negotiate(o.features, o.exact ?? false);
    if (!n.accepted) return { ok: false, features: n.features, status: n.status };
    const msix = (o.msix ?? true) && this.msix !== undefined;
    if (msix) this.enableMsix();
    else if (this.msix?.enabled) this.msix.enable(false);
    const maxPairs = this.has(NetFeature.MQ) ? this.maxVirtqueuePairs : 1;
    const pairs = o.pairs ?? maxPairs;
    if (pairs < 1 || pairs > maxPairs) throw new VirtioDriverError(`pairs: ${pairs} is not 1..${maxPairs}`);
    const vector = (i: number): number => (msix ? i + 1 : VIRTIO_MSI_NO_VECTOR);
    const mergeable = this.has(NetFeature.MRG_RXBUF);
    for (let p = 0; p < pairs; p++) {
      const rxq = this.setupQueue(2 * p, { size: o.queueSize, vector: vector(2 * p) });
      const txq = this.setupQueue(2 * p + 1, { size: o.queueSize, vector: vector(2 * p + 1) });
      this.rxQueues[p] = new RxQueue(rxq, this.ram, mergeable);
      this.txQueues[p] = new TxQueue(txq, this.ram);
    }
    if (this.has(NetFeature.CTRL_VQ)) {
      const ci = this.ctrlQueueIndex;
      this.ctrl = new ControlQueueDriver(this.setupQueue(ci, { size: Math.min(o.queueSize ?? 64, 64), vector: vector(ci) }), this.ram);
    }
    if (o.interrupts === false) for (const q of this.queues) q?.setInterrupts(false);
    const status = this.driverOk();
    if (o.rx !== false) {
      const rx = o.rx ?? {};
      for (const r of this.rxQueues) {
        const per = rx.indirect ? 1 : (rx.sizes?.length ?? 1);
        r.post(rx.count ?? Math.floor(r.queue.size / per), rx);
        r.kick();
      }
    }
    return { ok: (status & DeviceStatus.DRIVER_OK) !== 0, features: this.features, status };
  }

  /** §5.1.2: the control queue follows all pairs with MQ, else it is queue 2. */
  get ctrlQueueIndex(): number {
    return this.has(NetFeature.MQ) ? 2 * this.maxVirtqueuePairs : 2;
  }

  // ---------------------------------------------------------------- device configuration

  /** A device-specific configuration field (§4.1.4.6). */
  readConfig(offset: number, size: AccessWidth): number {
    if (this.loc.device < 0) throw new VirtioDriverError('the device has no device-specific configuration');
    return this.port.mmioRead(this.loc.device + offset, size);
  }

  get configGeneration(): number {
    return this.readCommon(C.CONFIG_GENERATION, 1);
  }

  /** §4.1.3.1 / §2.5.1: reads several fields until config_generation is the same before and after. */
  readConfigConsistent<T>(read: () => T): T {
    for (let i = 0; i < 100; i++) {
      const before = this.configGeneration;
      const v = read();
      if (this.configGeneration === before) return v;
    }
    throw new VirtioDriverError('config_generation keeps changing');
  }

  get mac(): Uint8Array {
    return this.readConfigConsistent(() => Uint8Array.from({ length: 6 }, (_, i) => this.readConfig(NetConfig.MAC + i, 1)));
  }

  /** §5.1.4 status (NetStatus bits). */
  get netStatus(): number {
    return this.readConfig(NetConfig.STATUS, 2);
  }

  get maxVirtqueuePairs(): number {
    return this.readConfig(NetConfig.MAX_VIRTQUEUE_PAIRS, 2);
  }

  get mtu(): number {
    return this.readConfig(NetConfig.MTU, 2);
  }

  // ---------------------------------------------------------------- notifications and interrupts

  /** The notify write for queue `index` (§4.1.5.2: the queue index, 16 bits). */
  notify(index: number): void {
    const at = this.notifyAddr[index];
    if (at === undefined) throw new VirtioDriverError(`queue ${index} has no notify address`);
    this.port.mmioWrite(at, 2, index);
  }

  /** §4.1.4.5: reads (and so clears) the ISR status byte. */
  readIsr(): number {
    return this.port.mmioRead(this.loc.isr, 1);
  }

  /** The MSI-X vector queue `index` was given (NO_VECTOR without). */
  queueVector(index: number): number {
    return this.vectorOf[index] ?? VIRTIO_MSI_NO_VECTOR;
  }

  /** MSIs received on queue `index`'s vector. */
  queueInterrupts(index: number): number {
    const v = this.queueVector(index);
    return v === VIRTIO_MSI_NO_VECTOR ? 0 : this.interrupts.count(v);
  }

  /** MSIs received on the configuration vector. */
  configInterrupts(): number {
    return this.interrupts.count(CONFIG_VECTOR);
  }

  requireMsix(): MsixDriver {
    if (!this.msix) throw new VirtioDriverError('the function has no MSI-X capability');
    return this.msix;
  }

  /** Lets the device service its backends (frames waiting to be received, room to send). */
  poll(): void {
    this.pollDevice?.();
  }

  // ---------------------------------------------------------------- traffic

  tx(pair = 0): TxQueue {
    const t = this.txQueues[pair];
    if (!t) throw new VirtioDriverError(`queue pair ${pair} is not set up`);
    return t;
  }

  rx(pair = 0): RxQueue {
    const r = this.rxQueues[pair];
    if (!r) throw new VirtioDriverError(`queue pair ${pair} is not set up`);
    return r;
  }

  /**
   * Queues frames on `pair` and kicks as the device asks, reclaiming used
   * chains and polling the device when the ring is full. Returns how many
   * were queued (all of them unless the device stopped taking any).
   */
  send(frames: Uint8Array | readonly Uint8Array[], o: SendOptions & { readonly pair?: number } = {}): number {
    const list = frames instanceof Uint8Array ? [frames] : frames;
    const t = this.tx(o.pair ?? 0);
    let sent = 0;
    let stuck = 0;
    for (const f of list) {
      while (!t.add(f, o)) {
        t.kick();
        this.poll();
        if (t.reclaim() === 0 && ++stuck > 100) {
          t.kick();
          return sent;
        }
      }
      stuck = 0;
      sent++;
    }
    t.kick();
    return sent;
  }

  /** Frames received on `pair` so far (chains reposted unless `repost` is false). */
  receive(pair = 0, repost = true): ReceivedFrame[] {
    return this.rx(pair).collect(repost);
  }

  /** Polls the device and collects until `count` frames arrived or `rounds` polls found nothing new. */
  receiveAtLeast(count: number, pair = 0, rounds = 50): ReceivedFrame[] {
    const out: ReceivedFrame[] = [];
    for (let idle = 0; out.length < count && idle < rounds; ) {
      const got = this.receive(pair);
      if (got.length === 0) {
        idle++;
        this.poll();
      } else {
        idle = 0;
        out.push(...got);
      }
    }
    return out;
  }

  /** Reclaims used transmit chains on every pair; returns how many. */
  reclaimTx(): number {
    let n = 0;
    for (const t of this.txQueues) n += t.reclaim();
    return n;
  }

  // ---------------------------------------------------------------- control queue (§5.1.6.5)

  ctrlCommand(cls: number, cmd: number, data?: Uint8Array): number {
    if (!this.ctrl) throw new VirtioDriverError('no control queue (CTRL_VQ not negotiated)');
    return this.ctrl.command(cls, cmd, data);
  }

  /** §5.1.6.5.5 VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET. */
  setQueuePairs(pairs: number): number {
    return this.ctrlCommand(NetCtrlClass.MQ, NetCtrlMq.VQ_PAIRS_SET, Uint8Array.of(pairs & 0xff, (pairs >> 8) & 0xff));
  }

  /** §5.1.6.5.1 VIRTIO_NET_CTRL_RX_* (PROMISC, ALLMULTI, ...). */
  setRxMode(command: number, on: boolean): number {
    return this.ctrlCommand(NetCtrlClass.RX, command, Uint8Array.of(on ? 1 : 0));
  }

  /** §5.1.6.5.2 VIRTIO_NET_CTRL_MAC_ADDR_SET. */
  setMac(mac: Uint8Array): number {
    return this.ctrlCommand(NetCtrlClass.MAC, NetCtrlMac.ADDR_SET, mac.subarray(0, 6));
  }

  /** §5.1.6.5.2 VIRTIO_NET_CTRL_MAC_TABLE_SET: unicast then multicast tables. */
  setMacTable(unicast: readonly Uint8Array[], multicast: readonly Uint8Array[]): number {
    const table = (macs: readonly Uint8Array[]): Uint8Array => {
      const t = new Uint8Array(4 + 6 * macs.length);
      new DataView(t.buffer).setUint32(0, macs.length, true);
      macs.forEach((m, i) => t.set(m.subarray(0, 6), 4 + 6 * i));
      return t;
    };
    const u = table(unicast);
    const m = table(multicast);
    const data = new Uint8Array(u.length + m.length);
    data.set(u, 0);
    data.set(m, u.length);
    return this.ctrlCommand(NetCtrlClass.MAC, NetCtrlMac.TABLE_SET, data);
  }

  /** §5.1.6.5.4 VIRTIO_NET_CTRL_ANNOUNCE_ACK. */
  announceAck(): number {
    return this.ctrlCommand(NetCtrlClass.ANNOUNCE, NetCtrlAnnounce.ACK);
  }
}
