// A device that exercises every queue entry point the way a real one may:
// pops batches, reads and writes the buffers through the chain's region and
// offset, keeps some buffers in flight and completes them out of order,
// rolls back pops (undo, mark/rewind), flushes, and toggles notifications. It
// also checks every chain the queue hands out against the guarantees the
// queue makes, counting violations in `badChains`.
import type { GuestMemory } from '../memory/guest-memory';
import { DescriptorChain } from '../virtio/queue/descriptor-chain';
import type { Virtqueue } from '../virtio/queue/virtqueue';
import type { FuzzRng } from './fuzz-rng';
import type { FuzzTarget } from './fuzz-target';

const U32_MAX = 0xffff_ffff;

export class GenericDeviceTarget implements FuzzTarget {
  readonly name = 'generic-device';
  badChains = 0;
  /** Buffers popped (including ones given back and popped again). */
  buffers = 0;
  /** Folded from buffer bytes so reads are not optimised away. */
  sink = 0;
  private queue: Virtqueue | null = null;
  private memory: GuestMemory | null = null;
  private readonly chain = new DescriptorChain(16);
  private heldIds: number[] = [];
  private heldSlots: number[] = [];
  private heldWritable: number[] = [];

  attach(queue: Virtqueue, memory: GuestMemory): void {
    this.queue = queue;
    this.memory = memory;
    this.heldIds = [];
    this.heldSlots = [];
    this.heldWritable = [];
  }

  step(rng: FuzzRng): void {
    const queue = this.queue;
    const memory = this.memory;
    if (queue === null || memory === null) return;
    switch (rng.int(8)) {
      case 0:
      case 1:
      case 2:
        this.serviceBatch(queue, memory, rng);
        break;
      case 3:
        this.completeHeld(queue, rng);
        break;
      case 4:
        queue.flush();
        break;
      case 5:
        queue.disableNotifications();
        break;
      case 6:
        if (queue.enableNotifications()) this.serviceBatch(queue, memory, rng);
        break;
      default:
        queue.hasAvailable();
        break;
    }
  }

  private serviceBatch(queue: Virtqueue, memory: GuestMemory, rng: FuzzRng): void {
    const chain = this.chain;
    if (rng.chance(0.15)) {
      // A multi-buffer item that does not fit: take a few, give them all back.
      queue.mark();
      let n = 1 + rng.int(4);
      while (n-- > 0 && queue.pop(chain)) this.check(chain, queue, memory);
      queue.rewind();
    }
    let budget = 1 + rng.int(16);
    while (budget-- > 0 && queue.pop(chain)) {
      this.check(chain, queue, memory);
      this.touch(chain, memory, rng);
      if (rng.chance(0.08)) {
        queue.undo(); // cannot take it now: offered again on the next pop
        break;
      }
      if (rng.chance(0.3)) {
        this.heldIds.push(chain.headId);
        this.heldSlots.push(chain.ringSlots);
        this.heldWritable.push(chain.writableLength);
      } else {
        queue.push(chain.headId, rng.int(chain.writableLength + 1), chain.ringSlots);
      }
    }
    if (rng.chance(0.7)) queue.flush();
  }

  /** Completes some held buffers in random order. */
  private completeHeld(queue: Virtqueue, rng: FuzzRng): void {
    let n = rng.int(this.heldIds.length + 1);
    while (n-- > 0) {
      const k = rng.int(this.heldIds.length);
      queue.push(this.heldIds[k], rng.int(this.heldWritable[k] + 1), this.heldSlots[k]);
      const last = this.heldIds.length - 1;
      this.heldIds[k] = this.heldIds[last];
      this.heldSlots[k] = this.heldSlots[last];
      this.heldWritable[k] = this.heldWritable[last];
      this.heldIds.pop();
      this.heldSlots.pop();
      this.heldWritable.pop();
    }
    queue.flush();
  }

  /** Reads the first byte of each readable buffer and writes a few bytes into each writable one. */
  private touch(chain: DescriptorChain, memory: GuestMemory, rng: FuzzRng): void {
    for (let k = 0; k < chain.count; k++) {
      const len = chain.len[k];
      if (len === 0) continue;
      const bytes = memory.regionBytes(chain.region[k]);
      const off = chain.offset[k];
      if (chain.writable[k] === 0) {
        this.sink = (this.sink + bytes[off] + bytes[off + len - 1]) | 0;
      } else {
        const n = Math.min(len, 8);
        const v = rng.u32() & 0xff;
        for (let j = 0; j < n; j++) bytes[off + j] = v;
        bytes[off + len - 1] = v;
      }
    }
  }

  /** The guarantees a popped chain carries (DescriptorChain, Virtqueue docs). */
  private check(chain: DescriptorChain, queue: Virtqueue, memory: GuestMemory): void {
    this.buffers++;
    let ok = chain.count >= 1 && chain.count <= queue.size;
    ok = ok && chain.ringSlots >= 1 && chain.ringSlots <= queue.size;
    ok = ok && (queue.kind === 'split' ? chain.headId < queue.size : chain.headId <= 0xffff);
    ok = ok && chain.readableLength + chain.writableLength <= U32_MAX;
    let readable = 0;
    let writable = 0;
    for (let k = 0; ok && k < chain.count; k++) {
      const r = chain.region[k];
      const off = chain.offset[k];
      const len = chain.len[k];
      ok = r >= 0 && r < memory.regionCount && off >= 0 && off + len <= memory.regionBytes(r).length;
      ok = ok && memory.regionBase(r) + off === chain.addr[k];
      ok = ok && (chain.writable[k] === 1) === k >= chain.readableCount;
      if (chain.writable[k] === 1) writable += len;
      else readable += len;
    }
    ok = ok && readable === chain.readableLength && writable === chain.writableLength;
    if (!ok) this.badChains++;
  }
}
