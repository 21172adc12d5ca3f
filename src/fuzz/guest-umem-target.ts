// The guest-umem data path (guest RAM as the UMEM) as a fuzz target: the
// fuzzed queue is serviced as a TX and as an RX queue through a real
// GuestUmemQueue whose four rings are played by a hostile simulated kernel.
// That kernel checks every address the device hands it: a Tx descriptor must
// lie inside a guest region or a bounce frame, a Fill address's whole chunk
// too (anything else throws: an escape). It completes and receives in random
// order, and also hands back addresses it was never given, the same address
// twice, and Rx frames at a wrong offset, which the device must count and
// ignore.
import type { GuestMemory } from '../memory/guest-memory';
import { sys } from '../native/sys';
import { GUEST_UMEM_CHUNK, GUEST_UMEM_HEADROOM, GUEST_UMEM_RX_ROOM, GuestUmemCounters, GuestUmemQueue } from '../backend/af-xdp/guest-umem-queue';
import { XskSocket, type XskSocketConfig, type XskSocketHandle } from '../backend/af-xdp/xsk-socket';
import { GuestUmemRxPath } from '../virtio/net/guest-umem-path';
import { NetQueueCounters } from '../virtio/net/net-counters';
import { TxPath } from '../virtio/net/tx-path';
import type { Virtqueue } from '../virtio/queue/virtqueue';
import type { FuzzRng } from './fuzz-rng';
import type { FuzzTarget } from './fuzz-target';

const RING = 64;
const BOUNCE = 2 * RING;
const OFFSETS = { producer: 0, consumer: 64, flags: 128, desc: 192 };
const RX_OFFSET = 256 + GUEST_UMEM_HEADROOM;
const TWO_POW_32 = 0x1_0000_0000;

/** One ring's shared words as the kernel side sees them. */
class SimRing {
  readonly buffer = sys.mapAnonymous(4096, 'base');
  readonly prod = new Uint32Array(this.buffer, OFFSETS.producer, 1);
  readonly cons = new Uint32Array(this.buffer, OFFSETS.consumer, 1);
  readonly words = new Uint32Array(this.buffer, OFFSETS.desc, (RING * 16) / 4);
  reset(): void {
    new Uint8Array(this.buffer).fill(0);
  }
}

export class GuestUmemNetTarget implements FuzzTarget {
  readonly name = 'guest-umem';
  readonly badChains = 0;
  readonly memoryTail = BOUNCE * GUEST_UMEM_CHUNK;
  readonly counters = new NetQueueCounters();
  /** Addresses the simulated kernel found outside what it may be given (must stay 0: each one throws too). */
  kernelViolations = 0;
  private readonly fill = new SimRing();
  private readonly comp = new SimRing();
  private readonly rxr = new SimRing();
  private readonly txr = new SimRing();
  private be: GuestUmemQueue | null = null;
  private tx: TxPath | null = null;
  private rx: GuestUmemRxPath | null = null;
  private queue: Virtqueue | null = null;
  private area: Uint8Array | null = null;
  private guestLength = 0;
  /** Region extents in UMEM addresses. */
  private regions: number[] = [];
  // What the simulated kernel holds.
  private heldTx: number[] = [];
  private heldFill: number[] = [];
  private readonly earlier = new GuestUmemCounters();

  /** The backend's guest-umem counters over every case so far. */
  get direct(): GuestUmemCounters {
    const sum = new GuestUmemCounters();
    for (const k of Object.keys(sum) as (keyof GuestUmemCounters)[]) sum[k] = this.earlier[k] + (this.be?.direct[k] ?? 0);
    return sum;
  }

  attach(queue: Virtqueue, memory: GuestMemory): void {
    this.tx?.dispose();
    if (this.be) for (const k of Object.keys(this.earlier) as (keyof GuestUmemCounters)[]) this.earlier[k] += this.be.direct[k];
    this.queue = queue;
    const bytes = memory.regionBytes(0);
    const buffer = bytes.buffer as ArrayBuffer;
    this.guestLength = buffer.byteLength - this.memoryTail;
    this.area = new Uint8Array(buffer);
    this.regions = [];
    for (let i = 0; i < memory.regionCount; i++) {
      const b = memory.regionBytes(i);
      this.regions.push(b.byteOffset, b.byteOffset + b.byteLength);
    }
    for (const r of [this.fill, this.comp, this.rxr, this.txr]) r.reset();
    this.heldTx = [];
    this.heldFill = [];
    const config: XskSocketConfig = {
      ifname: 'fuzz', ifindex: 0, queueId: 0, frameSize: GUEST_UMEM_CHUNK, frameCount: 0,
      fillSize: RING, completionSize: RING, rxSize: RING, txSize: RING, copyMode: 'default',
    };
    const ring = (r: SimRing): XskSocketHandle['rings']['fill'] => ({ address: sys.addressOf(r.buffer), length: 4096, offsets: OFFSETS, size: RING });
    const handle: XskSocketHandle = {
      config, fd: -1, zeroCopy: false, txPerSendto: 32,
      umem: { address: sys.addressOf(buffer), length: buffer.byteLength },
      rings: { fill: ring(this.fill), completion: ring(this.comp), rx: ring(this.rxr), tx: ring(this.txr) },
    };
    const socket = XskSocket.fromHandle(handle);
    this.be = new GuestUmemQueue({
      socket, guestLength: this.guestLength, bounceStart: this.guestLength, bounceCount: BOUNCE, hugePages: false,
      reopen: () => { throw new Error('no reset in the fuzz target'); },
    });
    this.tx = new TxPath(memory, queue, this.be, this.counters, { csum: true, tso: true });
    this.rx = new GuestUmemRxPath(memory, queue, this.be, this.counters);
  }

  /** [a, a + len) inside one guest region or one bounce frame. */
  private allowed(a: number, len: number): boolean {
    const r = this.regions;
    for (let i = 0; i < r.length; i += 2) if (a >= r[i]! && a + len <= r[i + 1]!) return true;
    const rel = a - this.guestLength;
    return rel >= 0 && rel < this.memoryTail && (rel % GUEST_UMEM_CHUNK) + len <= GUEST_UMEM_CHUNK;
  }

  private violation(what: string): never {
    this.kernelViolations++;
    throw new Error(`the kernel was given ${what}`);
  }

  /** The kernel takes what the device posted on Tx and Fill, checking each address. */
  private kernelTake(): void {
    const t = this.txr;
    for (let c = t.cons[0]!; c !== t.prod[0]!; c = (c + 1) >>> 0) {
      const w = (c & (RING - 1)) * 4;
      const a = t.words[w]! + t.words[w + 1]! * TWO_POW_32;
      const len = t.words[w + 2]!;
      if (!this.allowed(a, len)) this.violation(`a Tx descriptor [${a}, +${len}) outside guest memory`);
      this.heldTx.push(a);
      t.cons[0] = (c + 1) >>> 0;
    }
    const f = this.fill;
    for (let c = f.cons[0]!; c !== f.prod[0]!; c = (c + 1) >>> 0) {
      const w = (c & (RING - 1)) * 2;
      const a = f.words[w]! + f.words[w + 1]! * TWO_POW_32;
      if (!this.allowed(a, GUEST_UMEM_CHUNK)) this.violation(`a Fill chunk at ${a} outside guest memory`);
      this.heldFill.push(a);
      f.cons[0] = (c + 1) >>> 0;
    }
  }

  private static pick(rng: FuzzRng, list: number[]): number {
    const i = rng.int(list.length);
    const a = list[i]!;
    list[i] = list[list.length - 1]!;
    list.pop();
    return a;
  }

  /** Completions in random order, with addresses it never had and repeats now and then. */
  private kernelComplete(rng: FuzzRng): void {
    const c = this.comp;
    let n = rng.int(8);
    while (n-- > 0 && (c.prod[0]! - c.cons[0]!) >>> 0 < RING) {
      let a: number;
      if (this.heldTx.length > 0 && !rng.chance(0.1)) a = GuestUmemNetTarget.pick(rng, this.heldTx);
      else a = rng.int(this.area!.length + 4096);
      const w = (c.prod[0]! & (RING - 1)) * 2;
      c.words[w] = a >>> 0;
      c.words[w + 1] = Math.floor(a / TWO_POW_32);
      c.prod[0] = (c.prod[0]! + 1) >>> 0;
    }
  }

  /** Received frames into held Fill chunks, in random order; sometimes bogus addresses or a wrong offset. */
  private kernelReceive(rng: FuzzRng): void {
    const r = this.rxr;
    let n = rng.int(8);
    while (n-- > 0 && (r.prod[0]! - r.cons[0]!) >>> 0 < RING) {
      let a: number;
      let off = RX_OFFSET;
      const len = 14 + rng.int(GUEST_UMEM_RX_ROOM - 13);
      if (this.heldFill.length > 0 && !rng.chance(0.1)) {
        a = GuestUmemNetTarget.pick(rng, this.heldFill);
        const area = this.area!;
        for (let k = 0; k < len; k++) area[a + RX_OFFSET + k] = rng.int(256);
        if (rng.chance(0.05)) off = 0;
      } else a = rng.int(this.area!.length);
      const w = (r.prod[0]! & (RING - 1)) * 4;
      r.words[w] = a >>> 0;
      r.words[w + 1] = Math.floor(a / TWO_POW_32) + (off << 16);
      r.words[w + 2] = len;
      r.words[w + 3] = 0;
      r.prod[0] = (r.prod[0]! + 1) >>> 0;
    }
  }

  step(rng: FuzzRng): void {
    const { tx, rx, queue } = this;
    if (!tx || !rx || !queue) return;
    switch (rng.int(7)) {
      case 0:
      case 1:
        tx.process(1 + rng.int(32));
        break;
      case 2:
      case 3:
        rx.process(1 + rng.int(16));
        break;
      case 4:
        this.kernelTake();
        this.kernelComplete(rng);
        break;
      case 5:
        this.kernelTake();
        this.kernelReceive(rng);
        break;
      default:
        queue.flush();
        break;
    }
  }
}
