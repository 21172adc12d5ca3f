// §4.1.4.4 / §4.1.5.2: the notification structure. Queue i's notify address
// is i * NOTIFY_OFF_MULTIPLIER (queue_notify_off = i). As with a KVM ioeventfd
// on that address, the address names the queue; the value written (the
// queue index, §4.1.5.2) is not needed.
import type { AccessSize } from '../../pci/access';
import { NOTIFY_OFF_MULTIPLIER } from './bar-layout';

export class NotifyRegion {
  constructor(
    private readonly queueCount: number,
    private readonly notify: (queueIndex: number) => void,
  ) {}

  /** The notify offset (relative to the structure) of a queue. */
  static offsetOf(queueIndex: number): number {
    return queueIndex * NOTIFY_OFF_MULTIPLIER;
  }

  /** Reads of the notification structure have no meaning: 0. */
  read(): number {
    return 0;
  }

  /** 16-bit writes per §4.1.5.2; 32-bit ones (NOTIFICATION_DATA layout) are taken too. */
  write(offset: number, size: AccessSize): void {
    if (size === 1 || offset % NOTIFY_OFF_MULTIPLIER !== 0) return;
    const queue = offset / NOTIFY_OFF_MULTIPLIER;
    if (queue < this.queueCount) this.notify(queue);
  }
}
