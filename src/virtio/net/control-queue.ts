// The control virtqueue (§5.1.6.5): class + command + data readable, one ack
// byte writable at the end. Commands the device cannot honour are answered
// VIRTIO_NET_ERR, never ignored.
import { NetCtrlAnnounce, NetCtrlClass, NetCtrlMac, NetCtrlMq, NetCtrlRx, NetCtrlAck } from 'virtio-spec-types';
import type { GuestMemory } from '../../memory/guest-memory';
import { DescriptorChain, QueueErrorCounters, type Virtqueue } from '../queue';
import { gatherFromChain, scatterToChain } from './frame-copy';

export interface ControlHandler {
  maxPairs: number;
  /** MQ negotiated. */
  mq: boolean;
  setActivePairs(n: number): void;
  setMac(mac: Uint8Array): void;
  ackAnnounce(): void;
  /** CTRL_RX negotiated. */
  rxMode: boolean;
  /** CTRL_MAC_ADDR negotiated. */
  macAddr: boolean;
}

const MAX_CMD = 64;

export class ControlQueue {
  readonly errors = new QueueErrorCounters();
  commands = 0;
  rejected = 0;
  private readonly chain: DescriptorChain;
  private readonly cmd = new Uint8Array(MAX_CMD);
  private readonly ack = new Uint8Array(1);

  constructor(private readonly mem: GuestMemory, readonly vq: Virtqueue, private readonly handler: ControlHandler) {
    this.chain = new DescriptorChain(vq.size);
  }

  /** Handles every pending command. Returns whether the driver wants an interrupt. */
  process(): boolean {
    const { vq, chain } = this;
    // §2.7.10 / §2.8.10: enableNotifications keeps the event index at the next
    // command (or an EVENT_IDX driver never notifies again) and re-checks for
    // commands added meanwhile.
    for (;;) {
      while (vq.pop(chain)) {
        let status: number = NetCtrlAck.ERR;
        if (chain.writableLength >= 1 && chain.readableLength >= 2) {
          const n = gatherFromChain(this.mem, chain, 0, this.cmd, 0, Math.min(MAX_CMD, chain.readableLength));
          status = this.execute(this.cmd[0]!, this.cmd[1]!, this.cmd.subarray(2, n), chain.readableLength - 2);
        }
        this.commands++;
        if (status !== NetCtrlAck.OK) this.rejected++;
        this.ack[0] = status;
        let written = 0;
        if (chain.writableLength >= 1) written = scatterToChain(this.mem, chain, chain.writableLength - 1, this.ack, 0, 1);
        vq.push(chain.headId, written, chain.ringSlots);
      }
      if (!vq.enableNotifications()) break;
    }
    return vq.flush();
  }

  private execute(cls: number, command: number, data: Uint8Array, dataLen: number): number {
    const h = this.handler;
    const OK = NetCtrlAck.OK;
    const ERR = NetCtrlAck.ERR;
    switch (cls) {
      case NetCtrlClass.MQ:
        if (!h.mq || command !== NetCtrlMq.VQ_PAIRS_SET || dataLen < 2) return ERR;
        {
          const pairs = data[0]! | (data[1]! << 8);
          // §5.1.6.5.5: 1 <= pairs <= max_virtqueue_pairs, otherwise an error.
          if (pairs < 1 || pairs > h.maxPairs) return ERR;
          h.setActivePairs(pairs);
          return OK;
        }
      case NetCtrlClass.RX:
        // Every mode is accepted: the backend delivers what the interface receives; filtering is the guest's.
        if (!h.rxMode || command > NetCtrlRx.NOBCAST || dataLen < 1) return ERR;
        return OK;
      case NetCtrlClass.MAC:
        if (command === NetCtrlMac.ADDR_SET) {
          if (!h.macAddr || dataLen < 6) return ERR;
          h.setMac(data.subarray(0, 6));
          return OK;
        }
        if (command === NetCtrlMac.TABLE_SET) return h.rxMode ? OK : ERR;
        return ERR;
      case NetCtrlClass.ANNOUNCE:
        if (command !== NetCtrlAnnounce.ACK) return ERR;
        h.ackAnnounce();
        return OK;
      default:
        return ERR;
    }
  }
}
