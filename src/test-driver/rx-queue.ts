// A receive queue as the driver fills it (§5.1.6.3, §5.1.6.4): chains of
// device-writable buffers of the sizes the caller picks (several
// descriptors per chain, directly or through an indirect table), and the
// received frames collected from used chains: the virtio_net_hdr stripped,
// and with VIRTIO_NET_F_MRG_RXBUF a frame reassembled from the num_buffers
// chains it spans (§5.1.6.4: only the first chain carries the header).
import type { DriverBuffer } from '../fuzz/guest-access';
import type { DriverQueue } from './driver-queue';
import type { GuestRam } from './guest-ram';
import { NET_HDR_SIZE, type NetHeader, readNetHeader } from './net-header';

export interface RxPostOptions {
  /** Buffer sizes of one chain, one descriptor each (default [1526]: header + a 1514-byte frame). */
  readonly sizes?: readonly number[];
  /** Offer the chains through indirect tables. */
  readonly indirect?: boolean;
}

export interface ReceivedFrame {
  readonly header: NetHeader;
  readonly frame: Uint8Array;
  /** Chain ids the frame arrived in, in order, and the length the device reported for each. */
  readonly ids: readonly number[];
  readonly lens: readonly number[];
}

interface PostedChain {
  readonly buffers: readonly DriverBuffer[];
  readonly capacity: number;
  readonly indirect: boolean;
}

interface PartialFrame {
  header: NetHeader;
  parts: Uint8Array[];
  ids: number[];
  lens: number[];
  need: number;
}

/** Bytes written into fresh buffers so that data the device did not write shows up. */
const POISON = 0xee;
export const DEFAULT_RX_BUFFER = NET_HDR_SIZE + 1514;

export class RxQueue {
  /** Frames completed. */
  received = 0;
  /** Protocol problems seen in used chains (tests assert this stays empty). */
  readonly problems: string[] = [];
  private readonly posted = new Map<number, PostedChain>();
  private readonly spare = new Map<string, DriverBuffer[][]>();
  private partial: PartialFrame | undefined;

  constructor(
    readonly queue: DriverQueue,
    private readonly ram: GuestRam,
    /** VIRTIO_NET_F_MRG_RXBUF negotiated. */
    readonly mergeable: boolean,
  ) {}

  /** Chains offered and not yet used. */
  get outstanding(): number {
    return this.posted.size;
  }

  /** Offers up to `count` chains (not yet published: call kick()). Returns how many were offered. */
  post(count: number, o: RxPostOptions = {}): number {
    const sizes = o.sizes ?? [DEFAULT_RX_BUFFER];
    if (sizes.length === 0 || sizes.some((s) => !Number.isInteger(s) || s <= 0)) throw new RangeError(`rx buffer sizes ${String(sizes)}`);
    const key = sizes.join(',');
    let n = 0;
    for (; n < count; n++) {
      const buffers = this.spare.get(key)?.pop() ?? this.allocate(sizes);
      if (!this.offer(buffers, o.indirect ?? false)) {
        this.spareFor(key).push(buffers);
        break;
      }
    }
    return n;
  }

  /** Publishes and notifies if the device wants it. */
  kick(): boolean {
    return this.queue.kick();
  }

  /**
   * Frames completed since the last call. Each used chain is offered again
   * at once when `repost` (the default), so the device never runs dry.
   */
  collect(repost = true): ReceivedFrame[] {
    const out: ReceivedFrame[] = [];
    const used = this.queue.pollUsed();
    // Detach every used chain first: reposting reuses ids, which may be those of chains later in this batch.
    const chains = used.map((u) => {
      const c = this.posted.get(u.id);
      this.posted.delete(u.id);
      return c;
    });
    used.forEach((u, k) => {
      const chain = chains[k];
      if (!chain) {
        this.problems.push(`used id ${u.id} was not posted`);
        return;
      }
      if (u.len > chain.capacity) this.problems.push(`used len ${u.len} exceeds the chain's ${chain.capacity} bytes`);
      this.checkGuards(u.id, chain.buffers);
      this.accept(u.id, u.len, this.gather(chain.buffers, Math.min(u.len, chain.capacity)), out);
    });
    for (const chain of chains) {
      if (!chain) continue;
      if (repost) this.offer(chain.buffers, chain.indirect);
      else this.spareFor(chain.buffers.map((b) => b.len).join(',')).push([...chain.buffers]);
    }
    if (repost && used.length > 0) this.kick();
    return out;
  }

  private accept(id: number, len: number, data: Uint8Array, out: ReceivedFrame[]): void {
    let p = this.partial;
    if (!p) {
      if (data.length < NET_HDR_SIZE) {
        this.problems.push(`used chain ${id}: ${len} bytes, shorter than the header`);
        return;
      }
      const header = readNetHeader(data, 0);
      // §5.1.6.4.1: num_buffers is 1 without MRG_RXBUF.
      if (!this.mergeable && header.numBuffers !== 1) this.problems.push(`num_buffers ${header.numBuffers} without MRG_RXBUF`);
      if (this.mergeable && header.numBuffers === 0) this.problems.push('num_buffers 0');
      p = { header, parts: [data.subarray(NET_HDR_SIZE)], ids: [id], lens: [len], need: this.mergeable ? Math.max(1, header.numBuffers) : 1 };
    } else {
      p.parts.push(data);
      p.ids.push(id);
      p.lens.push(len);
    }
    if (p.parts.length < p.need) {
      this.partial = p;
      return;
    }
    this.partial = undefined;
    const total = p.parts.reduce((s, x) => s + x.length, 0);
    const frame = new Uint8Array(total);
    let at = 0;
    for (const x of p.parts) {
      frame.set(x, at);
      at += x.length;
    }
    this.received++;
    out.push({ header: p.header, frame, ids: p.ids, lens: p.lens });
  }

  private offer(buffers: readonly DriverBuffer[], indirect: boolean): boolean {
    for (const b of buffers) this.ram.fill(b.addr, b.len, POISON);
    const id = this.queue.add(buffers, indirect);
    if (id < 0) return false;
    this.posted.set(id, { buffers, capacity: buffers.reduce((s, b) => s + b.len, 0), indirect });
    return true;
  }

  /** Each buffer separately, with a gap, so a device writing past a buffer or mixing up their order is caught. */
  private allocate(sizes: readonly number[]): DriverBuffer[] {
    return sizes.map((len) => {
      const addr = this.ram.alloc(len + 64, 64);
      this.ram.fill(addr + len, 64, POISON);
      return { addr, len, write: true };
    });
  }

  private checkGuards(id: number, buffers: readonly DriverBuffer[]): void {
    for (const b of buffers) {
      if (this.ram.view(b.addr + b.len, 64).some((x) => x !== POISON)) this.problems.push(`chain ${id}: the device wrote past a ${b.len}-byte buffer`);
    }
  }

  private gather(buffers: readonly DriverBuffer[], len: number): Uint8Array {
    const out = new Uint8Array(len);
    let at = 0;
    for (const b of buffers) {
      if (at === len) break;
      const take = Math.min(b.len, len - at);
      out.set(this.ram.view(b.addr, take), at);
      at += take;
    }
    return out;
  }

  private spareFor(key: string): DriverBuffer[][] {
    let list = this.spare.get(key);
    if (!list) {
      list = [];
      this.spare.set(key, list);
    }
    return list;
  }
}
