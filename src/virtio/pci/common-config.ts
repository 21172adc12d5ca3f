// §4.1.4.3: the common configuration structure and the device lifecycle it
// drives: feature negotiation through 32-bit windows, the device status
// sequence of §3.1.1 (reset on 0, FEATURES_OK only if the device accepts,
// DRIVER_OK activates), per-queue set-up, queue reset (§2.6.1) and MSI-X
// vector mapping (§4.1.5.1.2).
//
// §4.1.3.1: the driver uses each field's natural width (32-bit halves for
// 64-bit fields). Any other access reads 0 and writes are ignored, as are
// writes to read-only fields.
import {
  DeviceStatus,
  VIRTIO_MSI_NO_VECTOR,
  VirtioFeature,
  VirtioPciCommonCfg as Reg,
  featureBit,
  featureWord,
  hasFeature,
  withFeatureWord,
} from 'virtio-spec-types';
import type { AccessSize } from '../../pci/access';
import type { DeviceContext, QueueConfig, VirtioDevice } from '../device';
import { QueueAddress, QueueRegisters } from './queue-registers';

/** What the common configuration needs from the rest of the transport. */
export interface CommonConfigHost {
  /** A fresh context for an activation with the negotiated features. */
  createContext(features: bigint): DeviceContext;
  /** Device reset: transport state outside this structure (ISR, old contexts) returns to reset values. */
  resetTransport(): void;
  /** Send a device configuration change notification. */
  signalConfigChange(): void;
  /** A queue's or the config's MSI-X vector mapping changed (also on reset): a VMM re-aims its irqfds. */
  vectorMappingChanged(): void;
}

export interface CommonConfigOptions {
  /** Features offered in device_feature. */
  readonly offeredFeatures: bigint;
  /** MSI-X table size: vectors 0..n-1 can be mapped. */
  readonly msixVectors: number;
}

/** Width of every field by offset. */
const FIELD_WIDTH = new Map<number, AccessSize>([
  [Reg.DEVICE_FEATURE_SELECT, 4],
  [Reg.DEVICE_FEATURE, 4],
  [Reg.DRIVER_FEATURE_SELECT, 4],
  [Reg.DRIVER_FEATURE, 4],
  [Reg.CONFIG_MSIX_VECTOR, 2],
  [Reg.NUM_QUEUES, 2],
  [Reg.DEVICE_STATUS, 1],
  [Reg.CONFIG_GENERATION, 1],
  [Reg.QUEUE_SELECT, 2],
  [Reg.QUEUE_SIZE, 2],
  [Reg.QUEUE_MSIX_VECTOR, 2],
  [Reg.QUEUE_ENABLE, 2],
  [Reg.QUEUE_NOTIFY_OFF, 2],
  [Reg.QUEUE_DESC_LO, 4],
  [Reg.QUEUE_DESC_HI, 4],
  [Reg.QUEUE_DRIVER_LO, 4],
  [Reg.QUEUE_DRIVER_HI, 4],
  [Reg.QUEUE_DEVICE_LO, 4],
  [Reg.QUEUE_DEVICE_HI, 4],
  [Reg.QUEUE_NOTIFY_DATA, 2],
  [Reg.QUEUE_RESET, 2],
]);

/** Address half index (QueueAddress + 0/1) of each 32-bit queue address register. */
const ADDRESS_HALF = new Map<number, number>([
  [Reg.QUEUE_DESC_LO, QueueAddress.DESC],
  [Reg.QUEUE_DESC_HI, QueueAddress.DESC + 1],
  [Reg.QUEUE_DRIVER_LO, QueueAddress.DRIVER],
  [Reg.QUEUE_DRIVER_HI, QueueAddress.DRIVER + 1],
  [Reg.QUEUE_DEVICE_LO, QueueAddress.DEVICE],
  [Reg.QUEUE_DEVICE_HI, QueueAddress.DEVICE + 1],
]);

/** Feature words presented: bits 0..127 (virtio-spec-types FEATURE_BIT_MAX). */
const FEATURE_WORDS = 4;

/** Status bits the driver sets (§2.1); DEVICE_NEEDS_RESET belongs to the device. */
const DRIVER_STATUS_BITS =
  DeviceStatus.ACKNOWLEDGE | DeviceStatus.DRIVER | DeviceStatus.FEATURES_OK | DeviceStatus.DRIVER_OK | DeviceStatus.FAILED;

export class CommonConfig {
  private deviceFeatureSelect = 0;
  private driverFeatureSelect = 0;
  private driverFeatures = 0n;
  /** Set once FEATURES_OK has been accepted. */
  private negotiated: bigint | undefined;
  private msixConfig = VIRTIO_MSI_NO_VECTOR;
  private status = 0;
  private queueSelect = 0;
  private readonly queues: QueueRegisters[];
  /** DRIVER_OK was accepted and the device activated, since the last reset. */
  private active = false;
  /** Exceptions thrown by the device (each also marks DEVICE_NEEDS_RESET). */
  deviceErrors = 0;

  get isActive(): boolean {
    return this.active;
  }

  lastDeviceError: unknown;

  constructor(
    private readonly device: VirtioDevice,
    private readonly options: CommonConfigOptions,
    private readonly host: CommonConfigHost,
  ) {
    this.queues = Array.from({ length: device.queueCount }, (_, i) => new QueueRegisters(i, device.queueMaxSizes?.[i] ?? device.queueMaxSize));
  }

  // ---- state the rest of the transport reads ----

  get deviceStatus(): number {
    return this.status;
  }

  get configVector(): number {
    return this.msixConfig;
  }

  /** The queue's MSI-X vector (NO_VECTOR if none or no such queue). */
  queueVector(index: number): number {
    return this.queues[index]?.msixVector ?? VIRTIO_MSI_NO_VECTOR;
  }

  isQueueEnabled(index: number): boolean {
    return this.queues[index]?.enabled ?? false;
  }

  /** Negotiated features, once FEATURES_OK has been accepted. */
  get features(): bigint | undefined {
    return this.negotiated;
  }

  private get ringKind(): QueueConfig['kind'] {
    return this.negotiated !== undefined && hasFeature(this.negotiated, VirtioFeature.RING_PACKED) ? 'packed' : 'split';
  }

  // ---- register accesses ----

  read(offset: number, size: AccessSize): number {
    if (FIELD_WIDTH.get(offset) !== size) return 0;
    switch (offset) {
      case Reg.DEVICE_FEATURE_SELECT:
        return this.deviceFeatureSelect;
      case Reg.DEVICE_FEATURE:
        return this.deviceFeatureSelect < FEATURE_WORDS ? featureWord(this.options.offeredFeatures, this.deviceFeatureSelect) : 0;
      case Reg.DRIVER_FEATURE_SELECT:
        return this.driverFeatureSelect;
      case Reg.DRIVER_FEATURE:
        return this.driverFeatureSelect < FEATURE_WORDS ? featureWord(this.driverFeatures, this.driverFeatureSelect) : 0;
      case Reg.CONFIG_MSIX_VECTOR:
        return this.msixConfig;
      case Reg.NUM_QUEUES:
        return this.queues.length;
      case Reg.DEVICE_STATUS:
        return this.status;
      case Reg.CONFIG_GENERATION:
        return this.guard(() => this.device.configGeneration & 0xff, 0);
      case Reg.QUEUE_SELECT:
        return this.queueSelect;
      default:
        return this.readQueueField(offset);
    }
  }

  private readQueueField(offset: number): number {
    const q = this.queues[this.queueSelect];
    // §4.1.4.3.2: a queue that does not exist reads queue_size 0; it has no vector.
    if (!q) return offset === Reg.QUEUE_MSIX_VECTOR ? VIRTIO_MSI_NO_VECTOR : 0;
    switch (offset) {
      case Reg.QUEUE_SIZE:
        return q.size;
      case Reg.QUEUE_MSIX_VECTOR:
        return q.msixVector;
      case Reg.QUEUE_ENABLE:
        return q.enabled ? 1 : 0;
      case Reg.QUEUE_NOTIFY_OFF:
        return q.index;
      case Reg.QUEUE_NOTIFY_DATA: // VIRTIO_F_NOTIF_CONFIG_DATA is never offered
      case Reg.QUEUE_RESET: // resets complete within the write (§4.1.4.3.2: 0 once done)
        return 0;
      default: {
        const half = ADDRESS_HALF.get(offset);
        return half === undefined ? 0 : (q.addressHalves[half] ?? 0);
      }
    }
  }

  write(offset: number, size: AccessSize, value: number): void {
    if (FIELD_WIDTH.get(offset) !== size) return;
    const v = size === 4 ? value >>> 0 : value & (size === 2 ? 0xffff : 0xff);
    switch (offset) {
      case Reg.DEVICE_FEATURE_SELECT:
        this.deviceFeatureSelect = v;
        return;
      case Reg.DRIVER_FEATURE_SELECT:
        this.driverFeatureSelect = v;
        return;
      case Reg.DRIVER_FEATURE:
        // §3.1.1 step 5: the feature set is fixed once FEATURES_OK is set.
        if ((this.status & DeviceStatus.FEATURES_OK) === 0 && this.driverFeatureSelect < FEATURE_WORDS) {
          this.driverFeatures = withFeatureWord(this.driverFeatures, this.driverFeatureSelect, v);
        }
        return;
      case Reg.CONFIG_MSIX_VECTOR:
        this.msixConfig = this.mapVector(v);
        this.host.vectorMappingChanged();
        return;
      case Reg.DEVICE_STATUS:
        this.writeStatus(v & 0xff);
        return;
      case Reg.QUEUE_SELECT:
        this.queueSelect = v;
        return;
      default:
        this.writeQueueField(offset, v);
    }
  }

  /** §4.1.5.1.2: a vector outside the MSI-X table cannot be mapped; reads then return NO_VECTOR. */
  private mapVector(v: number): number {
    return v < this.options.msixVectors ? v : VIRTIO_MSI_NO_VECTOR;
  }

  private writeQueueField(offset: number, v: number): void {
    const q = this.queues[this.queueSelect];
    if (!q) return;
    switch (offset) {
      case Reg.QUEUE_MSIX_VECTOR:
        q.msixVector = this.mapVector(v);
        this.host.vectorMappingChanged();
        return;
      case Reg.QUEUE_SIZE:
        // An enabled queue's ring is in use: its layout fields are frozen.
        if (!q.enabled && q.acceptsSize(v, this.ringKind)) q.size = v;
        return;
      case Reg.QUEUE_ENABLE:
        // §4.1.4.3.2: the driver MUST NOT write 0; disabling goes through queue_reset.
        if (v === 1) this.enableQueue(q);
        return;
      case Reg.QUEUE_RESET:
        if (v === 1) this.resetQueue(q);
        return;
      default: {
        const half = ADDRESS_HALF.get(offset);
        if (half !== undefined && !q.enabled) q.addressHalves[half] = v;
      }
    }
  }

  /** Enables a queue once features are negotiated (its layout depends on them) and its set-up is valid. */
  private enableQueue(q: QueueRegisters): void {
    if (q.enabled || this.negotiated === undefined || !q.canEnable(this.ringKind)) return;
    q.enabled = true;
    if (this.active) {
      const snapshot = q.snapshot(this.ringKind);
      this.guard(() => this.device.enableQueue?.(snapshot), undefined);
    }
  }

  /** §2.6.1 / §4.1.4.3.2: with VIRTIO_F_RING_RESET, 1 in queue_reset resets that queue alone. */
  private resetQueue(q: QueueRegisters): void {
    if (this.negotiated === undefined || !hasFeature(this.negotiated, VirtioFeature.RING_RESET)) return;
    if (this.active && q.enabled) this.guard(() => this.device.resetQueue?.(q.index), undefined);
    q.reset();
  }

  // ---- device status (§2.1, §3.1.1) ----

  private writeStatus(value: number): void {
    if (value === 0) {
      this.reset();
      return;
    }
    const current = this.status & DRIVER_STATUS_BITS;
    let next = value & DRIVER_STATUS_BITS;
    // §2.1.2: the driver MUST NOT clear status bits; only a reset does.
    if ((current & ~next) !== 0) return;
    const added = next & ~current;
    if (added & DeviceStatus.FEATURES_OK && !this.negotiate()) {
      next &= ~(DeviceStatus.FEATURES_OK | DeviceStatus.DRIVER_OK);
    }
    // DRIVER_OK needs accepted features and a device that has not failed.
    const needsReset = (this.status & DeviceStatus.DEVICE_NEEDS_RESET) !== 0;
    if (added & DeviceStatus.DRIVER_OK && ((next & DeviceStatus.FEATURES_OK) === 0 || needsReset)) {
      next &= ~DeviceStatus.DRIVER_OK;
    }
    this.status = next | (this.status & DeviceStatus.DEVICE_NEEDS_RESET);
    if (next & added & DeviceStatus.DRIVER_OK) this.activate();
  }

  /**
   * §3.1.1 step 5 / §2.2.1: accept the driver's features only if they are a
   * subset of the offer, include VIRTIO_F_VERSION_1 (§6.1: this is a modern
   * device), and the device agrees.
   */
  private negotiate(): boolean {
    const features = this.driverFeatures;
    if ((features & ~this.options.offeredFeatures) !== 0n) return false;
    if ((features & featureBit(VirtioFeature.VERSION_1)) === 0n) return false;
    if (!this.guard(() => this.device.setDriverFeatures(features), false)) return false;
    this.negotiated = features;
    return true;
  }

  private activate(): void {
    const features = this.negotiated ?? 0n;
    const kind = this.ringKind;
    const queues = this.queues.map((q) => q.snapshot(kind));
    const ctx = this.host.createContext(features);
    this.active = true;
    this.guard(() => this.device.activate(queues, ctx), undefined);
  }

  /** §2.4 / §4.1.4.3.1: writing 0 to device_status resets the device and every field. */
  reset(): void {
    this.host.resetTransport();
    try {
      this.device.reset();
    } catch (e) {
      this.recordError(e);
    }
    this.active = false;
    this.deviceFeatureSelect = 0;
    this.driverFeatureSelect = 0;
    this.driverFeatures = 0n;
    this.negotiated = undefined;
    this.msixConfig = VIRTIO_MSI_NO_VECTOR;
    this.status = 0;
    this.queueSelect = 0;
    for (const q of this.queues) q.reset();
    this.host.vectorMappingChanged();
  }

  /** §2.1.2: DEVICE_NEEDS_RESET, then a configuration change notification if DRIVER_OK is set. */
  markNeedsReset(): void {
    if (this.status & DeviceStatus.DEVICE_NEEDS_RESET) return;
    this.status |= DeviceStatus.DEVICE_NEEDS_RESET;
    if (this.status & DeviceStatus.DRIVER_OK) this.host.signalConfigChange();
  }

  /** An available buffer notification from the notify region. */
  queueNotify(index: number): void {
    if (!this.active || !this.isQueueEnabled(index)) return;
    try {
      this.device.queueNotify(index); // no closure: this can be a per-kick path without ioeventfds
    } catch (e) {
      this.recordError(e);
      this.markNeedsReset();
    }
  }

  /**
   * Runs a device call. A throw is the device's bug or a guest-triggered
   * failure it did not handle: count it, mark DEVICE_NEEDS_RESET and carry
   * on, so nothing the guest does can stop the vCPU thread.
   */
  guard<T>(call: () => T, fallback: T): T {
    try {
      return call();
    } catch (e) {
      this.recordError(e);
      this.markNeedsReset();
      return fallback;
    }
  }

  private recordError(e: unknown): void {
    this.deviceErrors += 1;
    this.lastDeviceError = e;
  }
}
