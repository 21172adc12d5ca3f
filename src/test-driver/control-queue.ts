// The control virtqueue as the driver uses it (§5.1.6.5): one chain per
// command, `class` and `command` in one device-readable buffer, the data in
// another, and the one-byte ack device-writable at the end. The device
// services a kick inline, so the answer is in the used ring when the notify
// write returns.
import { NetCtrlAck } from 'virtio-spec-types';
import type { DriverBuffer } from '../fuzz/guest-access';
import type { DriverQueue } from './driver-queue';
import type { GuestRam } from './guest-ram';

/** What command() returns when the device did not answer (e.g. it needs a reset). */
export const CTRL_NO_ANSWER = -1;
const ACK_UNWRITTEN = 0xa5;

export class ControlQueueDriver {
  /** Commands sent, and answers per ack value. */
  sent = 0;
  private readonly hdr: number;
  private readonly data: number;
  private readonly ack: number;

  constructor(
    readonly queue: DriverQueue,
    private readonly ram: GuestRam,
    /** Room for command data (the MAC tables are the largest). */
    readonly maxData = 512,
  ) {
    this.hdr = ram.alloc(2, 16);
    this.data = ram.alloc(maxData, 16);
    this.ack = ram.alloc(1, 16);
  }

  /**
   * Sends one command and returns the device's ack (NetCtrlAck.OK / ERR),
   * or CTRL_NO_ANSWER if the chain did not come back.
   */
  command(cls: number, cmd: number, data: Uint8Array = new Uint8Array(0), o: { indirect?: boolean } = {}): number {
    if (data.length > this.maxData) throw new RangeError(`control data of ${data.length} bytes exceeds ${this.maxData}`);
    this.queue.pollUsed(); // anything left from an unanswered command
    this.ram.write(this.hdr, Uint8Array.of(cls, cmd));
    this.ram.write(this.data, data);
    this.ram.write(this.ack, Uint8Array.of(ACK_UNWRITTEN));
    const buffers: DriverBuffer[] = [{ addr: this.hdr, len: 2, write: false }];
    if (data.length > 0) buffers.push({ addr: this.data, len: data.length, write: false });
    buffers.push({ addr: this.ack, len: 1, write: true });
    const id = this.queue.add(buffers, o.indirect ?? false);
    if (id < 0) return CTRL_NO_ANSWER;
    this.sent++;
    this.queue.kick();
    const used = this.queue.pollUsed();
    if (!used.some((u) => u.id === id)) return CTRL_NO_ANSWER;
    const ack = this.ram.read(this.ack, 1)[0]!;
    return ack === ACK_UNWRITTEN ? CTRL_NO_ANSWER : ack;
  }

  static readonly OK = NetCtrlAck.OK;
  static readonly ERR = NetCtrlAck.ERR;
}
