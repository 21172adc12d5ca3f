// A vhost-user front end for tests (the role QEMU plays): memfd-backed
// "guest memory" shared with the back end through SET_MEM_TABLE, split rings
// driven with SplitRingDriver, kick/call eventfds, and raw access to the
// socket for malformed messages.
import { featureMask, NetFeature, VirtioFeature } from 'virtio-spec-types';
import { GuestBus } from '../../src/fuzz/guest-bus';
import { SplitRingDriver } from '../../src/fuzz/split-ring-driver';
import { GuestRam } from '../../src/kvm/memory';
import { encodeMessage, u64Payload, vringStatePayload } from '../../src/vhost-user/message';
import { HEADER_SIZE, HeaderFlags, MEM_REGION_SIZE, MEM_TABLE_HEADER, ProtocolFeature, Request, VHOST_USER_F_PROTOCOL_FEATURES } from '../../src/vhost-user/protocol';
import { unixSocket } from '../../src/vhost-user/unix-socket';
import { sys } from '../../src/native/sys';

const EFD_CLOEXEC = 0o2000000;
const EFD_NONBLOCK = 0o4000;

/** Where the front end pretends its guest memory is mapped (front-end user addresses, as QEMU's would be). */
export const USER_BASE = 0x7f12_3400_0000n;
export const NET_HDR = 12;

export interface Reply {
  request: number;
  flags: number;
  payload: Uint8Array;
  u64(): bigint;
}

export interface FrontRegion {
  gpa: number;
  size: number;
  userAddr: bigint;
  mmapOffset: number;
  fd: number;
}

export class VhostUserFrontEnd {
  private readonly wakeFd: number;
  private closed = false;

  private constructor(readonly fd: number) {
    this.wakeFd = sys.eventfdCreate(0, EFD_CLOEXEC | EFD_NONBLOCK);
  }

  /** Connects, retrying while the server is not listening yet. */
  static async connect(path: string, timeoutMs = 3000): Promise<VhostUserFrontEnd> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        return new VhostUserFrontEnd(unixSocket.unixConnect(path));
      } catch (e) {
        if (Date.now() > deadline) throw e;
        await new Promise((r) => setTimeout(r, 10));
      }
    }
  }

  /** Sends raw bytes (any framing, any fds). */
  sendRaw(bytes: Uint8Array, fds: readonly number[] = []): void {
    unixSocket.unixSend(this.fd, bytes, fds, 1000);
  }

  send(request: number, payload: Uint8Array = new Uint8Array(0), fds: readonly number[] = [], needReply = false): void {
    this.sendRaw(encodeMessage(request, HeaderFlags.Version | (needReply ? HeaderFlags.NeedReply : 0), payload), fds);
  }

  /** The next message from the back end; undefined when the back end closed the connection or nothing came in time. */
  async receive(timeoutMs = 3000): Promise<Reply | undefined> {
    const header = await this.readExactly(HEADER_SIZE, timeoutMs);
    if (!header) return undefined;
    const v = new DataView(header.buffer, header.byteOffset, HEADER_SIZE);
    const size = v.getUint32(8, true);
    const payload = size > 0 ? await this.readExactly(size, timeoutMs) : new Uint8Array(0);
    if (!payload) return undefined;
    return {
      request: v.getUint32(0, true),
      flags: v.getUint32(4, true),
      payload,
      u64: () => new DataView(payload.buffer, payload.byteOffset, payload.byteLength).getBigUint64(0, true),
    };
  }

  /** Whether the back end closed the connection (EOF) within timeoutMs. */
  async closedByPeer(timeoutMs = 3000): Promise<boolean> {
    const r = await this.readExactly(1, timeoutMs);
    return r === undefined && this.eof;
  }

  private eof = false;

  private async readExactly(n: number, timeoutMs: number): Promise<Uint8Array | undefined> {
    const out = new Uint8Array(n);
    let got = 0;
    const timer = setTimeout(() => sys.eventfdWrite(this.wakeFd, 1), timeoutMs);
    try {
      while (got < n) {
        let r;
        try {
          r = await unixSocket.unixRecvAsync(this.fd, n - got, 8, this.wakeFd);
        } catch {
          this.eof = true;
          return undefined;
        }
        for (const fd of r.fds) sys.close(fd);
        if (r.woken) {
          sys.eventfdRead(this.wakeFd);
          return undefined;
        }
        if (r.eof) {
          this.eof = true;
          return undefined;
        }
        out.set(r.bytes, got);
        got += r.bytes.length;
      }
      return out;
    } finally {
      clearTimeout(timer);
    }
  }

  /** A request with an explicit reply (GET_*). */
  async call(request: number, payload: Uint8Array = new Uint8Array(0)): Promise<Reply> {
    this.send(request, payload);
    const r = await this.receive();
    if (!r) throw new Error(`no reply to request ${request}`);
    if (r.request !== request || (r.flags & HeaderFlags.Reply) === 0) throw new Error(`bad reply ${r.request}/${r.flags} to ${request}`);
    return r;
  }

  /** A request with NEED_REPLY: resolves with the REPLY_ACK value (0 = success), or undefined if the connection closed. */
  async ack(request: number, payload: Uint8Array = new Uint8Array(0), fds: readonly number[] = []): Promise<bigint | undefined> {
    this.send(request, payload, fds, true);
    const r = await this.receive();
    if (!r) return undefined;
    if (r.request !== request || (r.flags & HeaderFlags.Reply) === 0) throw new Error(`bad ack ${r.request}/${r.flags} to ${request}`);
    return r.u64();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    sys.close(this.fd);
    sys.close(this.wakeFd);
  }

  // ------------------------------------------------------------ messages

  static memTable(regions: readonly Omit<FrontRegion, 'fd'>[], count = regions.length): Uint8Array {
    const b = new Uint8Array(MEM_TABLE_HEADER + regions.length * MEM_REGION_SIZE);
    const v = new DataView(b.buffer);
    v.setUint32(0, count, true);
    regions.forEach((r, i) => {
      const o = MEM_TABLE_HEADER + i * MEM_REGION_SIZE;
      v.setBigUint64(o, BigInt(r.gpa), true);
      v.setBigUint64(o + 8, BigInt(r.size), true);
      v.setBigUint64(o + 16, r.userAddr, true);
      v.setBigUint64(o + 24, BigInt(r.mmapOffset), true);
    });
    return b;
  }

  static vringAddr(index: number, desc: bigint, used: bigint, avail: bigint, flags = 0): Uint8Array {
    const b = new Uint8Array(40);
    const v = new DataView(b.buffer);
    v.setUint32(0, index, true);
    v.setUint32(4, flags, true);
    v.setBigUint64(8, desc, true);
    v.setBigUint64(16, used, true);
    v.setBigUint64(24, avail, true);
    return b;
  }
}

/** Features the test front end accepts (split rings, mergeable buffers, no offloads in use). */
export const FRONT_FEATURES =
  featureMask(VirtioFeature.VERSION_1, VirtioFeature.EVENT_IDX, NetFeature.MRG_RXBUF) | (1n << BigInt(VHOST_USER_F_PROTOCOL_FEATURES));
export const FRONT_PROTOCOL = featureMask(ProtocolFeature.MQ, ProtocolFeature.REPLY_ACK, ProtocolFeature.CONFIG);

export interface RingLayout {
  index: number;
  size: number;
  desc: number;
  avail: number;
  used: number;
}

/** The two rings of one queue pair in the front end's memory, with their eventfds. */
export class PairRings {
  readonly rx: SplitRingDriver;
  readonly tx: SplitRingDriver;
  readonly rxLayout: RingLayout;
  readonly txLayout: RingLayout;
  readonly kick: { rx: number; tx: number };
  readonly call: { rx: number; tx: number };
  /** Guest-physical bases of the RX and TX buffers (4 KiB each, buffer i at base + i * 4096). */
  readonly rxBuffers: number;
  readonly txBuffers: number;

  constructor(bus: GuestBus, readonly pair: number, readonly ringSize: number, eventIdx: boolean) {
    const rings = 0x10000 + pair * 0x40000;
    this.rxLayout = { index: 2 * pair, size: ringSize, desc: rings, avail: rings + 0x10000, used: rings + 0x18000 };
    this.txLayout = { index: 2 * pair + 1, size: ringSize, desc: rings + 0x20000, avail: rings + 0x30000, used: rings + 0x38000 };
    this.rxBuffers = 0x200000 + pair * 0x200000;
    this.txBuffers = this.rxBuffers + 0x100000;
    const drv = (l: RingLayout): SplitRingDriver =>
      new SplitRingDriver(bus, { size: l.size, descAddr: l.desc, availAddr: l.avail, usedAddr: l.used }, { eventIdx });
    this.rx = drv(this.rxLayout);
    this.tx = drv(this.txLayout);
    const efd = (): number => sys.eventfdCreate(0, EFD_CLOEXEC | EFD_NONBLOCK);
    this.kick = { rx: efd(), tx: efd() };
    this.call = { rx: efd(), tx: efd() };
  }

  release(): void {
    for (const fd of [this.kick.rx, this.kick.tx, this.call.rx, this.call.tx]) sys.close(fd);
  }
}

/** One guest with memfd memory and `pairCount` queue pairs' rings and eventfds, negotiated and running after setUp(). */
export class FrontGuest {
  readonly ram: GuestRam;
  readonly bus: GuestBus;
  readonly pairs: PairRings[];

  constructor(
    readonly front: VhostUserFrontEnd,
    readonly memSize = 8 << 20,
    readonly ringSize = 256,
    readonly eventIdx = true,
    pairCount = 1,
  ) {
    this.ram = GuestRam.allocate(memSize, { memfd: 'vhost-user-test-guest' });
    this.bus = new GuestBus(this.ram.bytes, [{ gpa: 0, offset: 0, length: memSize }]);
    this.pairs = Array.from({ length: pairCount }, (_, p) => new PairRings(this.bus, p, ringSize, eventIdx));
  }

  // Pair 0, for single-pair tests.
  get rx(): SplitRingDriver {
    return this.pairs[0]!.rx;
  }
  get tx(): SplitRingDriver {
    return this.pairs[0]!.tx;
  }
  get kick(): { rx: number; tx: number } {
    return this.pairs[0]!.kick;
  }
  get call(): { rx: number; tx: number } {
    return this.pairs[0]!.call;
  }

  static user(gpa: number): bigint {
    return USER_BASE + BigInt(gpa);
  }

  /** The usual start-up sequence (what QEMU's vhost_dev_start sends), every step acknowledged. */
  async setUp(features = FRONT_FEATURES, protocol = FRONT_PROTOCOL): Promise<void> {
    const f = this.front;
    const expectOk = (what: string, v: bigint | undefined): void => {
      if (v !== 0n) throw new Error(`${what} failed: ${String(v)}`);
    };
    f.send(Request.SET_OWNER);
    const offered = (await f.call(Request.GET_FEATURES)).u64();
    if ((offered & features) !== features) throw new Error(`features 0x${offered.toString(16)} lack some of 0x${features.toString(16)}`);
    const proto = (await f.call(Request.GET_PROTOCOL_FEATURES)).u64();
    f.send(Request.SET_PROTOCOL_FEATURES, u64Payload(proto & protocol));
    expectOk('SET_FEATURES', await f.ack(Request.SET_FEATURES, u64Payload(features)));
    expectOk(
      'SET_MEM_TABLE',
      await f.ack(
        Request.SET_MEM_TABLE,
        VhostUserFrontEnd.memTable([{ gpa: 0, size: this.memSize, userAddr: USER_BASE, mmapOffset: 0 }]),
        [this.ram.fd],
      ),
    );
    for (const pr of this.pairs) {
      for (const [l, kick, call] of [
        [pr.rxLayout, pr.kick.rx, pr.call.rx],
        [pr.txLayout, pr.kick.tx, pr.call.tx],
      ] as const) {
        expectOk('SET_VRING_NUM', await f.ack(Request.SET_VRING_NUM, vringStatePayload(l.index, l.size)));
        expectOk('SET_VRING_BASE', await f.ack(Request.SET_VRING_BASE, vringStatePayload(l.index, 0)));
        expectOk(
          'SET_VRING_ADDR',
          await f.ack(Request.SET_VRING_ADDR, VhostUserFrontEnd.vringAddr(l.index, FrontGuest.user(l.desc), FrontGuest.user(l.used), FrontGuest.user(l.avail))),
        );
        expectOk('SET_VRING_CALL', await f.ack(Request.SET_VRING_CALL, u64Payload(BigInt(l.index)), [call]));
        expectOk('SET_VRING_KICK', await f.ack(Request.SET_VRING_KICK, u64Payload(BigInt(l.index)), [kick]));
        expectOk('SET_VRING_ENABLE', await f.ack(Request.SET_VRING_ENABLE, vringStatePayload(l.index, 1)));
      }
    }
  }

  /** After GET_VRING_BASE stopped both rings of pair 0: resume them at those bases (QEMU's vhost_virtqueue_start). */
  async restartRings(txBase: number, rxBase: number): Promise<void> {
    const f = this.front;
    const pr = this.pairs[0]!;
    for (const [l, base, kick, call] of [
      [pr.rxLayout, rxBase, pr.kick.rx, pr.call.rx],
      [pr.txLayout, txBase, pr.kick.tx, pr.call.tx],
    ] as const) {
      if ((await f.ack(Request.SET_VRING_BASE, vringStatePayload(l.index, base))) !== 0n) throw new Error('SET_VRING_BASE');
      if ((await f.ack(Request.SET_VRING_CALL, u64Payload(BigInt(l.index)), [call])) !== 0n) throw new Error('SET_VRING_CALL');
      if ((await f.ack(Request.SET_VRING_KICK, u64Payload(BigInt(l.index)), [kick])) !== 0n) throw new Error('SET_VRING_KICK');
    }
  }

  /** Offers `frames` on a pair's TX ring (virtio-net header + frame per buffer) and kicks. */
  transmit(frames: readonly Uint8Array[], first = 0, pair = 0): number {
    const pr = this.pairs[pair]!;
    let n = 0;
    for (const fr of frames) {
      const slot = (first + n) % this.ringSize;
      const addr = pr.txBuffers + slot * 4096;
      this.ram.bytes.fill(0, addr, addr + NET_HDR);
      this.ram.bytes.set(fr, addr + NET_HDR);
      if (pr.tx.add([{ addr, len: NET_HDR + fr.length, write: false }]) < 0) break;
      n++;
    }
    if (pr.tx.publish()) sys.eventfdWrite(pr.kick.tx, 1);
    return n;
  }

  /** Posts `count` 4 KiB receive buffers on a pair's RX ring and kicks. */
  postRx(count: number, pair = 0): void {
    const pr = this.pairs[pair]!;
    for (let i = 0; i < count; i++) {
      const id = pr.rx.add([{ addr: 0, len: 4096, write: true }]);
      if (id < 0) break;
      // The descriptor's buffer is the one numbered like its head: rewrite its address.
      pr.rx.writeDescriptor(id, pr.rxBuffers + id * 4096, 4096, 0x2, 0);
    }
    if (pr.rx.publish()) sys.eventfdWrite(pr.kick.rx, 1);
  }

  /** Collects a pair's used RX buffers as frames (header stripped). */
  receivedFrames(pair = 0): Uint8Array[] {
    const pr = this.pairs[pair]!;
    return pr.rx.pollUsed().map((u) => this.ram.bytes.slice(pr.rxBuffers + u.id * 4096 + NET_HDR, pr.rxBuffers + u.id * 4096 + u.len));
  }

  release(): void {
    for (const pr of this.pairs) pr.release();
    this.ram.release();
  }
}
