// What a virtio transport (virtio-pci, the vhost-user server, the in-process
// test driver) needs from a virtio device, and what it gives the device.
// Transport-neutral: no PCI, vectors or file descriptors appear here.
//
// Lifecycle, as the transport drives it (§3.1.1):
//   setDriverFeatures(f)   FEATURES_OK: accept or refuse the driver's features
//   activate(queues, ctx)  DRIVER_OK: start servicing the enabled queues
//   queueNotify(i)         available buffer notification for queue i
//   resetQueue(i)          VIRTIO_F_RING_RESET: stop queue i and forget it
//   enableQueue(q)         a queue enabled after activation (after resetQueue)
//   reset()                device reset (status 0): stop everything, back to initial state
// Everything the driver controls arrives here already range-checked by the
// transport; the device must still treat ring contents as hostile.
import type { GuestMemory } from '../memory/guest-memory';

/** One virtqueue as the driver set it up (§2.6), fixed until the queue or device is reset. */
export interface QueueConfig {
  readonly index: number;
  /** Queue Size the driver chose: 1..the device's maximum; a power of 2 for split rings. */
  readonly size: number;
  /** Ring layout, fixed by VIRTIO_F_RING_PACKED at FEATURES_OK (§2.7 split, §2.8 packed). */
  readonly kind: 'split' | 'packed';
  /** Whether the driver enabled the queue; the device must not touch a disabled queue's memory. */
  readonly enabled: boolean;
  /** Guest-physical Descriptor Area: descriptor table (split) or descriptor ring (packed). */
  readonly descAddr: number;
  /** Guest-physical Driver Area: avail ring (split) or driver event suppression (packed). */
  readonly driverAddr: number;
  /** Guest-physical Device Area: used ring (split) or device event suppression (packed). */
  readonly deviceAddr: number;
}

/** What the transport gives an activated device. Calls after a reset are ignored. */
export interface DeviceContext {
  readonly memory: GuestMemory;
  /** The features negotiated at FEATURES_OK. */
  readonly features: bigint;
  /** Used buffer notification for a queue (MSI-X vector, INTx, irqfd, call fd, ...). */
  signalUsed(queueIndex: number): void;
  /** Device configuration change notification; bump configGeneration first. */
  signalConfig(): void;
  /**
   * §2.1.2: the device hit an error it cannot recover from without a reset;
   * the transport sets DEVICE_NEEDS_RESET and notifies the driver.
   */
  markNeedsReset(): void;
}

export interface VirtioDevice {
  /** Virtio device id (§5): 1 = network. */
  readonly deviceId: number;
  /** Number of virtqueues (num_queues). */
  readonly queueCount: number;
  /** Largest Queue Size the device supports for every queue: a power of 2, 1..32768. */
  readonly queueMaxSize: number;
  /** Per queue index, where a queue's largest Queue Size differs from queueMaxSize (same rules). */
  readonly queueMaxSizes?: readonly number[];
  /** Feature bits the device offers, including VIRTIO_F_VERSION_1. */
  readonly deviceFeatures: bigint;
  /** Bytes of device-specific configuration (0 when the device type has none). */
  readonly configSize: number;
  /** §2.5.1 / §4.1.4.3: changes whenever the device configuration changes (low 8 bits are presented). */
  readonly configGeneration: number;
  /** Reads `size` bytes little-endian at `offset` (offset + size <= configSize, checked by the transport). */
  readConfig(offset: number, size: 1 | 2 | 4): number;
  writeConfig(offset: number, size: 1 | 2 | 4, value: number): void;
  /**
   * FEATURES_OK: the driver's accepted features (already a subset of what
   * was offered, with VERSION_1). Returns false to refuse the combination.
   */
  setDriverFeatures(features: bigint): boolean;
  /** DRIVER_OK: one entry per queue (index = position), enabled or not. */
  activate(queues: readonly QueueConfig[], ctx: DeviceContext): void;
  /** Available buffer notification for an enabled queue of an active device. */
  queueNotify(index: number): void;
  /** Device reset: stop using guest memory and the context, return to the initial state. */
  reset(): void;
  /**
   * §2.6.1 (VIRTIO_F_RING_RESET): stop servicing queue `index` and forget its
   * ring state. A device offering RING_RESET implements this and enableQueue;
   * otherwise the transport withholds the feature.
   */
  resetQueue?(index: number): void;
  /** A queue the driver enabled while the device is active (re-enable after resetQueue). */
  enableQueue?(queue: QueueConfig): void;
}
