// The per-virtqueue registers of the common configuration (§4.1.4.3) for
// one queue, their reset values, and the checks made before the driver may
// enable the queue.
import { PackedAlign, SplitAlign, VIRTIO_MSI_NO_VECTOR } from 'virtio-spec-types';
import type { QueueConfig } from '../device';

/** Address halves in the order of the common configuration: desc, driver, device (lo, hi each). */
export const QueueAddress = { DESC: 0, DRIVER: 2, DEVICE: 4 } as const;
export type QueueAddress = (typeof QueueAddress)[keyof typeof QueueAddress];

/** Above this a high address half puts the area beyond any x86 physical address (2^52). */
const MAX_ADDRESS_HIGH = 2 ** 20;

function isPowerOfTwo(n: number): boolean {
  return n > 0 && (n & (n - 1)) === 0;
}

export class QueueRegisters {
  size: number;
  msixVector = VIRTIO_MSI_NO_VECTOR;
  enabled = false;
  /** desc lo, desc hi, driver lo, driver hi, device lo, device hi. */
  readonly addressHalves = new Uint32Array(6);

  constructor(
    readonly index: number,
    readonly maxSize: number,
  ) {
    this.size = maxSize;
  }

  /** §4.1.4.3.1: reset values (queue_size = maximum, queue_enable = 0, no vector). */
  reset(): void {
    this.size = this.maxSize;
    this.msixVector = VIRTIO_MSI_NO_VECTOR;
    this.enabled = false;
    this.addressHalves.fill(0);
  }

  address(which: QueueAddress): number {
    return (this.addressHalves[which + 1] ?? 0) * 0x1_0000_0000 + (this.addressHalves[which] ?? 0);
  }

  /**
   * §4.1.4.3.2: a size the driver may write: 1..maximum, and a power of 2
   * unless the ring is packed (§2.7: split Queue Size is always a power of 2).
   */
  acceptsSize(size: number, kind: QueueConfig['kind']): boolean {
    return size >= 1 && size <= this.maxSize && (kind === 'packed' || isPowerOfTwo(size));
  }

  /**
   * Whether the queue may be enabled as configured: a valid size, every area
   * within physical address range and aligned as §2.7 (split) / §2.8.10.1
   * (packed) require, so the ring code never sees a misaligned area.
   */
  canEnable(kind: QueueConfig['kind']): boolean {
    if (!this.acceptsSize(this.size, kind)) return false;
    for (const which of [QueueAddress.DESC, QueueAddress.DRIVER, QueueAddress.DEVICE]) {
      if ((this.addressHalves[which + 1] ?? 0) >= MAX_ADDRESS_HIGH) return false;
    }
    const [desc, driver, device] =
      kind === 'packed'
        ? [PackedAlign.DESC, PackedAlign.DRIVER_EVENT, PackedAlign.DEVICE_EVENT]
        : [SplitAlign.DESC, SplitAlign.AVAIL, SplitAlign.USED];
    return (
      this.address(QueueAddress.DESC) % desc === 0 &&
      this.address(QueueAddress.DRIVER) % driver === 0 &&
      this.address(QueueAddress.DEVICE) % device === 0
    );
  }

  snapshot(kind: QueueConfig['kind']): QueueConfig {
    return {
      index: this.index,
      size: this.size,
      kind,
      enabled: this.enabled,
      descAddr: this.address(QueueAddress.DESC),
      driverAddr: this.address(QueueAddress.DRIVER),
      deviceAddr: this.address(QueueAddress.DEVICE),
    };
  }
}
