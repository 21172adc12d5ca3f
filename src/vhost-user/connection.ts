// One front end's session: reads its messages one at a time, applies them
// to the device state (features, memory table, vrings) and starts or stops
// the queue pairs' I/O workers as their rings become ready or stop.
//
// Everything the front end sends is hostile. A request the back end cannot
// honour is answered with a failing REPLY_ACK when the front end negotiated
// REPLY_ACK and set need_reply (vhost-user.rst "VHOST_USER_PROTOCOL_F_REPLY_ACK");
// otherwise the connection is closed ("If back-end detects some error ...
// it may also close the connection"). Either way the server keeps serving.
//
// A pair runs when both its rings are started (SET_VRING_KICK) and enabled
// (SET_VRING_ENABLE, or at once without VHOST_USER_F_PROTOCOL_FEATURES),
// with a size, addresses inside the memory table, and features set. Any
// change to what a running pair uses (memory table, features, one of its
// rings' size, addresses, base, kick or call fd) stops it first, applies
// the change, then starts it again where it stopped: a worker never sees
// memory or an fd that is being replaced.
import { readlinkSync } from 'node:fs';
import { hasFeature, NetFeature, NetMtu, QUEUE_SIZE_MAX, SplitAlign, splitAvailSize, splitDescTableSize, splitUsedSize } from 'virtio-spec-types';
import type { WorkerQueuePairRunner } from '../io/worker-queue-pair-runner';
import type { QueueConfig } from '../virtio/device';
import type { NetConfigSpace } from '../virtio/net/net-config-space';
import { MemoryTable } from './memory-table';
import { configPayload, encodeMessage, type Message, ProtocolError, u64Payload, vringStatePayload } from './message';
import { MessageReader } from './message-reader';
import { pairSpec, refuseFeatures } from './net-features';
import {
  HeaderFlags,
  ProtocolFeature,
  Request,
  VHOST_USER_F_PROTOCOL_FEATURES,
  VRING_F_LOG,
  VRING_INDEX_MASK,
  VRING_NOFD,
} from './protocol';
import { unixSocket } from './unix-socket';
import { Vring } from './vring';
import { sys } from '../native/sys';

const EFD_CLOEXEC = 0o2000000;
const EFD_NONBLOCK = 0o4000;
const SEND_TIMEOUT_MS = 2000;

/** Requests whose reply is their own (REPLY_ACK "brings no behavioural change" for them). */
const EXPLICIT_REPLY = new Set<number>([
  Request.GET_FEATURES,
  Request.GET_PROTOCOL_FEATURES,
  Request.GET_VRING_BASE,
  Request.GET_QUEUE_NUM,
  Request.GET_CONFIG,
  Request.GET_MAX_MEM_SLOTS,
  Request.GET_INFLIGHT_FD,
  Request.GET_STATUS,
  Request.IOTLB_MSG,
  Request.POSTCOPY_END,
]);

export interface ConnectionContext {
  readonly runner: WorkerQueuePairRunner;
  readonly pairs: number;
  readonly features: bigint;
  readonly protocolFeatures: bigint;
  readonly config: NetConfigSpace;
  /** The MTU enforced once VIRTIO_NET_F_MTU is negotiated, until the front end sends its own (NET_SET_MTU). */
  readonly mtu: number;
  /** Log every request as it is handled. */
  readonly trace: boolean;
  log(line: string): void;
}

export interface ConnectionStats {
  messages: number;
  refused: number;
  pairStarts: number;
}

function isEventFd(fd: number): boolean {
  try {
    return readlinkSync(`/proc/self/fd/${fd}`) === 'anon_inode:[eventfd]';
  } catch {
    return false;
  }
}

export class VhostUserConnection {
  readonly rings: Vring[];
  readonly stats: ConnectionStats = { messages: 0, refused: 0, pairStarts: 0 };
  /** Why the connection ended (set when it has). */
  closeReason = '';
  private features = 0n;
  private featuresSet = false;
  private protocol = 0n;
  /** NET_SET_MTU's value, once the front end sent one. */
  private mtu: number | undefined;
  private table: MemoryTable | undefined;
  private readonly running: boolean[];
  private readonly brokenReported: boolean[];
  /** Pairs started at least once on this connection (the first start drops frames queued for the previous front end). */
  private readonly startedBefore: boolean[];
  /** Call target for rings without a call fd (nobody reads it). */
  private readonly sinkFd: number;
  /** Kick source for polled rings (nobody writes it: the worker wakes on its own timeout). */
  private readonly idleFd: number;
  private readonly wakeFd: number;
  private readonly reader: MessageReader;
  private closing = false;

  constructor(
    readonly fd: number,
    private readonly ctx: ConnectionContext,
  ) {
    this.rings = Array.from({ length: 2 * ctx.pairs }, (_, i) => new Vring(i));
    this.running = new Array<boolean>(ctx.pairs).fill(false);
    this.brokenReported = new Array<boolean>(ctx.pairs).fill(false);
    this.startedBefore = new Array<boolean>(ctx.pairs).fill(false);
    this.sinkFd = sys.eventfdCreate(0, EFD_CLOEXEC | EFD_NONBLOCK);
    this.idleFd = sys.eventfdCreate(0, EFD_CLOEXEC | EFD_NONBLOCK);
    this.wakeFd = sys.eventfdCreate(0, EFD_CLOEXEC | EFD_NONBLOCK);
    this.reader = new MessageReader(fd, this.wakeFd);
  }

  /** Serves messages until the front end goes away, breaks the protocol, or shutdown(); then releases everything. */
  async serve(): Promise<void> {
    try {
      for (;;) {
        const msg = await this.reader.next();
        if (!msg) {
          this.closeReason ||= this.closing ? 'server shutting down' : 'front end disconnected';
          break;
        }
        if (!(await this.dispatch(msg))) break;
      }
    } catch (e) {
      this.closeReason = (e as Error).message;
    } finally {
      await this.dispose();
    }
  }

  /** Ends serve() (server shutdown): the pending read returns, then everything is released. */
  shutdown(): void {
    this.closing = true;
    sys.eventfdWrite(this.wakeFd, 1);
  }

  /** Pairs whose workers are servicing rings now. */
  get runningPairs(): number {
    return this.running.filter(Boolean).length;
  }

  // ------------------------------------------------------------ messages

  /** Handles one message; false when the connection must close. */
  private async dispatch(msg: Message): Promise<boolean> {
    this.stats.messages++;
    const ackable = msg.needReply && this.hasProtocol(ProtocolFeature.REPLY_ACK) && !EXPLICIT_REPLY.has(msg.request);
    let reply: Uint8Array | undefined;
    let failure: ProtocolError | undefined;
    try {
      reply = await this.handle(msg);
    } catch (e) {
      failure = e instanceof ProtocolError ? e : new ProtocolError(`${msg.name}: ${(e as Error).message}`);
    } finally {
      msg.closeUntaken();
    }
    if (this.ctx.trace && !failure) this.ctx.log(`vhost-user: ${msg.name} (${msg.payload.length} bytes, ${msg.fds.length} fds)${reply ? ' -> reply' : ''}`);
    if (failure) {
      this.stats.refused++;
      this.ctx.log(`vhost-user: refused ${msg.name}: ${failure.message}`);
      if (!ackable || failure.fatal) {
        this.closeReason = `refused ${msg.name}: ${failure.message}`;
        return false;
      }
    }
    try {
      if (reply) this.send(reply);
      if (ackable) this.send(encodeMessage(msg.request, HeaderFlags.Version | HeaderFlags.Reply, u64Payload(failure ? 1n : 0n)));
    } catch (e) {
      this.closeReason = `cannot reply: ${(e as Error).message}`;
      return false;
    }
    return true;
  }

  private send(bytes: Uint8Array): void {
    unixSocket.unixSend(this.fd, bytes, [], SEND_TIMEOUT_MS);
  }

  private reply(msg: Message, payload: Uint8Array): Uint8Array {
    return encodeMessage(msg.request, HeaderFlags.Version | HeaderFlags.Reply, payload);
  }

  private hasProtocol(bit: number): boolean {
    return hasFeature(this.protocol, bit);
  }

  private ring(index: number): Vring {
    const r = this.rings[index];
    if (!r) throw new ProtocolError(`vring ${index} out of range (${this.rings.length} rings)`);
    return r;
  }

  private async handle(msg: Message): Promise<Uint8Array | undefined> {
    switch (msg.request) {
      case Request.GET_FEATURES:
        msg.expectSize(0);
        return this.reply(msg, u64Payload(this.ctx.features));

      case Request.SET_FEATURES: {
        const f = msg.u64();
        const why = refuseFeatures(f, this.ctx.features);
        if (why) throw new ProtocolError(`SET_FEATURES: ${why}`);
        await this.reconfigure(this.allPairs(), () => {
          this.features = f;
          this.featuresSet = true;
          // "If VHOST_USER_F_PROTOCOL_FEATURES has not been negotiated, the ring starts directly in the enabled state."
          if (!hasFeature(f, VHOST_USER_F_PROTOCOL_FEATURES)) for (const r of this.rings) r.enabled = true;
        });
        return undefined;
      }

      case Request.GET_PROTOCOL_FEATURES:
        msg.expectSize(0);
        return this.reply(msg, u64Payload(this.ctx.protocolFeatures));

      case Request.SET_PROTOCOL_FEATURES: {
        const f = msg.u64();
        const extra = f & ~this.ctx.protocolFeatures;
        if (extra !== 0n) throw new ProtocolError(`SET_PROTOCOL_FEATURES: 0x${extra.toString(16)} were not offered`);
        this.protocol = f;
        return undefined;
      }

      case Request.GET_QUEUE_NUM:
        // DPDK's vhost-user net back end answers in queue pairs, as here; QEMU does not check it for net devices.
        msg.expectSize(0);
        return this.reply(msg, u64Payload(BigInt(this.ctx.pairs)));

      case Request.SET_OWNER:
        msg.expectSize(0);
        return undefined;

      case Request.RESET_OWNER:
        // Deprecated; "recommended that back-ends either ignore this message, or use it to disable all rings".
        msg.expectSize(0);
        await this.reconfigure(this.allPairs(), () => {
          for (const r of this.rings) r.enabled = false;
        });
        return undefined;

      case Request.RESET_DEVICE:
        msg.expectSize(0);
        if (!this.hasProtocol(ProtocolFeature.RESET_DEVICE)) throw new ProtocolError('RESET_DEVICE without the RESET_DEVICE protocol feature');
        await this.reconfigure(this.allPairs(), () => {
          for (const r of this.rings) r.reset();
          this.features = 0n;
          this.featuresSet = false;
        });
        return undefined;

      case Request.SET_MEM_TABLE: {
        const descs = msg.memoryTable();
        msg.expectFds(descs.length);
        const table = MemoryTable.map(descs, msg.fds);
        await this.reconfigure(this.allPairs(), () => {
          const old = this.table;
          this.table = table;
          this.ctx.runner.setRegions(table.shared());
          old?.release();
        });
        return undefined;
      }

      case Request.SET_LOG_BASE:
      case Request.SET_LOG_FD:
        throw new ProtocolError('dirty logging is not supported (VHOST_USER_PROTOCOL_F_LOG_SHMFD and VHOST_F_LOG_ALL are not offered)');

      case Request.SET_VRING_NUM: {
        const { index, num } = msg.vringState();
        const r = this.ring(index);
        // §2.7: a split ring's size is a power of 2 no larger than 32768.
        if (num < 1 || num > QUEUE_SIZE_MAX || (num & (num - 1)) !== 0) throw new ProtocolError(`SET_VRING_NUM: vring ${index}: size ${num}`);
        await this.reconfigure([index >> 1], () => {
          r.num = num;
        });
        return undefined;
      }

      case Request.SET_VRING_ADDR: {
        const a = msg.vringAddress();
        const r = this.ring(a.index);
        if ((a.flags & VRING_F_LOG) !== 0) throw new ProtocolError(`SET_VRING_ADDR: vring ${a.index}: logging is not supported`);
        this.checkRingAddresses(a.index, r.num || 1, a.desc, a.avail, a.used);
        await this.reconfigure([a.index >> 1], () => {
          r.addresses = { desc: a.desc, avail: a.avail, used: a.used };
        });
        return undefined;
      }

      case Request.SET_VRING_BASE: {
        const { index, num } = msg.vringState();
        const r = this.ring(index);
        if (num > 0xffff) throw new ProtocolError(`SET_VRING_BASE: vring ${index}: ${num} is not a split ring index`);
        await this.reconfigure([index >> 1], () => {
          r.base = num;
        });
        return undefined;
      }

      case Request.GET_VRING_BASE: {
        const { index } = msg.vringState();
        const r = this.ring(index);
        // "stop ring upon receiving VHOST_USER_GET_VRING_BASE": its pair stops (the other ring keeps its place).
        await this.stopPair(index >> 1);
        r.stop();
        return this.reply(msg, vringStatePayload(index, r.base));
      }

      case Request.SET_VRING_KICK:
      case Request.SET_VRING_CALL:
      case Request.SET_VRING_ERR:
        await this.setVringFd(msg);
        return undefined;

      case Request.SET_VRING_ENABLE: {
        const { index, num } = msg.vringState();
        const r = this.ring(index);
        if (num > 1) throw new ProtocolError(`SET_VRING_ENABLE: vring ${index}: ${num} is neither 0 nor 1`);
        await this.reconfigure([index >> 1], () => {
          r.enabled = num === 1;
        });
        return undefined;
      }

      case Request.GET_CONFIG: {
        if (!this.hasProtocol(ProtocolFeature.CONFIG)) throw new ProtocolError('GET_CONFIG without the CONFIG protocol feature');
        const c = msg.config();
        const bytes = this.ctx.config.bytes;
        // "vhost-user back-end uses zero length of payload to indicate an error".
        if (c.offset > bytes.length || c.size > bytes.length - c.offset) return this.reply(msg, new Uint8Array(0));
        return this.reply(msg, configPayload(c.offset, c.flags, bytes.slice(c.offset, c.offset + c.size)));
      }

      case Request.SET_CONFIG: {
        if (!this.hasProtocol(ProtocolFeature.CONFIG)) throw new ProtocolError('SET_CONFIG without the CONFIG protocol feature');
        const c = msg.config();
        // "back-ends MUST NOT accept SET_CONFIG for read-only configuration space fields unless the live migration bit is set":
        // every virtio-net field is read-only for a VERSION_1 driver (§5.1.4).
        if (c.flags !== 1) throw new ProtocolError('SET_CONFIG: the virtio-net configuration is read-only');
        return undefined;
      }

      case Request.NET_SET_MTU: {
        // vhost-user.rst: the front end's host_mtu, sent before the rings start; the back end checks it and
        // "MUST reject" what it cannot handle (§5.1.4.1's 68..65535 bound).
        if (!this.hasProtocol(ProtocolFeature.MTU)) throw new ProtocolError('NET_SET_MTU without the NET_MTU protocol feature');
        const mtu = msg.u64();
        if (mtu < BigInt(NetMtu.MIN) || mtu > BigInt(NetMtu.MAX)) throw new ProtocolError(`NET_SET_MTU: ${mtu} is not in ${NetMtu.MIN}..${NetMtu.MAX}`);
        this.mtu = Number(mtu);
        return undefined;
      }

      default:
        throw new ProtocolError(`${msg.name} is not supported`);
    }
  }

  /** SET_VRING_KICK / CALL / ERR: u64 with the index in bits 0-7 and "no fd" in bit 8. */
  private async setVringFd(msg: Message): Promise<void> {
    const v = msg.u64();
    if (v >> 9n !== 0n) throw new ProtocolError(`${msg.name}: unknown bits in 0x${v.toString(16)}`);
    const index = Number(v & BigInt(VRING_INDEX_MASK));
    const noFd = (v & BigInt(VRING_NOFD)) !== 0n;
    const r = this.ring(index);
    msg.expectFds(noFd ? 0 : 1);
    if (!noFd) {
      if (!isEventFd(msg.fds[0]!)) throw new ProtocolError(`${msg.name}: vring ${index}: the fd is not an eventfd`);
      // Ours must never block on it, whatever the front end does with its copy.
      unixSocket.fdSetNonBlocking(msg.fds[0]!);
    }
    const fd = noFd ? -1 : msg.takeFd(0);
    if (msg.request === Request.SET_VRING_ERR) {
      r.setErr(fd);
      return;
    }
    if (msg.request === Request.SET_VRING_CALL && !this.running[index >> 1]) {
      r.setCall(fd);
      return;
    }
    await this.reconfigure([index >> 1], () => {
      if (msg.request === Request.SET_VRING_KICK) r.setKick(fd);
      else r.setCall(fd);
    });
  }

  /** Ring parts aligned (§2.7) and wholly inside one region of the table. */
  private checkRingAddresses(index: number, num: number, desc: bigint, avail: bigint, used: bigint): void {
    const t = this.table;
    if (!t) throw new ProtocolError(`SET_VRING_ADDR: vring ${index}: no memory table yet`);
    const part = (name: string, addr: bigint, len: number, align: number): void => {
      if (addr % BigInt(align) !== 0n) throw new ProtocolError(`SET_VRING_ADDR: vring ${index}: ${name} at 0x${addr.toString(16)} is not ${align}-byte aligned`);
      if (t.translate(addr, len) < 0) throw new ProtocolError(`SET_VRING_ADDR: vring ${index}: ${name} at 0x${addr.toString(16)} is outside the memory table`);
    };
    part('descriptor table', desc, splitDescTableSize(num), SplitAlign.DESC);
    part('avail ring', avail, splitAvailSize(num), SplitAlign.AVAIL);
    part('used ring', used, splitUsedSize(num), SplitAlign.USED);
  }

  // ------------------------------------------------------------ pairs

  private allPairs(): number[] {
    return Array.from({ length: this.ctx.pairs }, (_, p) => p);
  }

  /** Stops the running pairs among `pairs`, applies `change`, then starts every pair of `pairs` that is ready. */
  private async reconfigure(pairs: readonly number[], change: () => void): Promise<void> {
    for (const p of pairs) await this.stopPair(p);
    change();
    for (const p of pairs) this.startIfReady(p);
  }

  /** Stops a pair's worker session and records where both rings stopped. */
  private async stopPair(p: number): Promise<void> {
    if (!this.running[p]) return;
    this.running[p] = false;
    const pos = await this.ctx.runner.stop(p);
    if (pos) {
      this.rings[2 * p]!.base = pos.rx.nextAvail;
      this.rings[2 * p + 1]!.base = pos.tx.nextAvail;
    }
  }

  private startIfReady(p: number): void {
    const rx = this.rings[2 * p]!;
    const tx = this.rings[2 * p + 1]!;
    const t = this.table;
    if (this.closing || this.running[p] || !t || !this.featuresSet || !rx.ready || !tx.ready) return;
    // Without VIRTIO_NET_F_MQ only the first pair exists (§5.1.2).
    if (p > 0 && !hasFeature(this.features, NetFeature.MQ)) return;
    const rxq = this.queueConfig(rx, t);
    const txq = this.queueConfig(tx, t);
    if (!rxq || !txq) {
      // The table changed under the rings' addresses: wait for new addresses.
      this.ctx.log(`vhost-user: queue pair ${p}: ring addresses are outside the current memory table; not started`);
      this.signalError(p);
      return;
    }
    const usedIdx = (q: QueueConfig): number => t.memory.readU16(q.deviceAddr + 2);
    const spec = {
      ...pairSpec(p, rxq, txq, this.features, { availBase: rx.base, usedBase: usedIdx(rxq) }, { availBase: tx.base, usedBase: usedIdx(txq) }, this.mtu ?? this.ctx.mtu),
      discardPendingRx: !this.startedBefore[p],
    };
    this.startedBefore[p] = true;
    this.ctx.runner.setFds(p, {
      rxKick: rx.kickFd >= 0 ? rx.kickFd : this.idleFd,
      txKick: tx.kickFd >= 0 ? tx.kickFd : this.idleFd,
      rxCall: rx.callFd >= 0 ? rx.callFd : this.sinkFd,
      txCall: tx.callFd >= 0 ? tx.callFd : this.sinkFd,
    });
    this.brokenReported[p] = false;
    this.ctx.runner.start(spec, {
      memory: t.memory,
      signalUsed: () => {},
      markNeedsReset: () => this.onBroken(p),
    });
    this.running[p] = true;
    this.stats.pairStarts++;
  }

  private queueConfig(r: Vring, t: MemoryTable): QueueConfig | undefined {
    const a = r.addresses!;
    const desc = t.translate(a.desc, splitDescTableSize(r.num));
    const avail = t.translate(a.avail, splitAvailSize(r.num));
    const used = t.translate(a.used, splitUsedSize(r.num));
    if (desc < 0 || avail < 0 || used < 0) return undefined;
    return { index: r.index, size: r.num, kind: 'split', enabled: true, descAddr: desc, driverAddr: avail, deviceAddr: used };
  }

  /** A ring of pair p broke a rule (§2.1.2): there is no NEEDS_RESET in vhost-user; signal the error fds. */
  private onBroken(p: number): void {
    if (this.brokenReported[p]) return;
    this.brokenReported[p] = true;
    this.ctx.log(`vhost-user: queue pair ${p}: the driver broke a ring rule; the pair stopped until its rings are set up again`);
    this.signalError(p);
  }

  private signalError(p: number): void {
    for (const r of [this.rings[2 * p]!, this.rings[2 * p + 1]!]) if (r.errFd >= 0) sys.eventfdWrite(r.errFd, 1);
  }

  // ------------------------------------------------------------ tear-down

  /** Workers stopped first (they use the memory and the fds), then everything this connection holds is released. */
  private async dispose(): Promise<void> {
    this.closing = true;
    for (const p of this.allPairs()) await this.stopPair(p);
    await this.ctx.runner.drained();
    for (const r of this.rings) r.reset();
    for (let p = 0; p < this.ctx.pairs; p++) this.ctx.runner.setFds(p, { rxKick: -1, txKick: -1, rxCall: -1, txCall: -1 });
    this.ctx.runner.setRegions([]);
    this.table?.release();
    this.table = undefined;
    for (const fd of [this.sinkFd, this.idleFd, this.wakeFd, this.fd]) {
      try {
        sys.close(fd);
      } catch (e) {
        this.ctx.log(`vhost-user: closing fd ${fd}: ${(e as Error).message}`);
      }
    }
  }
}
