// The virtio-net device's data path as a fuzz target: the fuzzed queue is
// serviced as a TX queue (header parsing, software checksum and TSO on
// hostile headers and lengths) and as an RX queue (mergeable or single
// buffers, readable descriptors where only writable ones belong), against a
// loopback backend that also receives injected frames of every size.
import type { GuestMemory } from '../memory/guest-memory';
import { LoopbackQueue } from '../backend/loopback/loopback-queue';
import { NetQueueCounters } from '../virtio/net/net-counters';
import { RxPath } from '../virtio/net/rx-path';
import { TxPath } from '../virtio/net/tx-path';
import type { Virtqueue } from '../virtio/queue/virtqueue';
import type { FuzzRng } from './fuzz-rng';
import type { FuzzTarget } from './fuzz-target';

export class VirtioNetTarget implements FuzzTarget {
  readonly name = 'virtio-net';
  readonly badChains = 0;
  readonly counters = new NetQueueCounters();
  private tx: TxPath | null = null;
  private rx: RxPath | null = null;
  private queue: Virtqueue | null = null;
  private readonly backend = new LoopbackQueue({ slots: 64, slotSize: 4096 });
  private readonly frame = new Uint8Array(9000);

  attach(queue: Virtqueue, memory: GuestMemory): void {
    this.queue = queue;
    // An empty backend per case: leftovers of the previous case must not leak into this one.
    this.backend.reset();
    const offloads = { csum: true, tso: true };
    this.tx = new TxPath(memory, queue, this.backend, this.counters, offloads);
    this.rx = new RxPath(memory, queue, this.backend, this.counters, (queue.size & 1) === 0);
  }

  step(rng: FuzzRng): void {
    const { tx, rx, queue } = this;
    if (!tx || !rx || !queue) return;
    switch (rng.int(6)) {
      case 0:
      case 1:
        tx.process(1 + rng.int(32));
        break;
      case 2: {
        const len = rng.int(this.frame.length);
        for (let i = 0; i < len; i++) this.frame[i] = rng.int(256);
        this.backend.inject(this.frame.subarray(0, len));
        break;
      }
      case 3:
      case 4:
        rx.process(1 + rng.int(16));
        break;
      default:
        queue.flush();
        break;
    }
    // Every slot of the backend must stay accounted for, whatever the guest did.
    if (this.backend.accounted() !== this.backend.slots) throw new Error('loopback frame leaked');
  }
}
