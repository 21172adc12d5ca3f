// The vhost-user server for virtio-net over an AF_XDP backend: listens on a
// unix socket, serves one front end at a time (vhost-user is one front end
// per socket; the next one waits in the backlog), and after a disconnect or
// crash of the front end accepts the next connection with the same backend.
//
// Queue pair p is serviced by one persistent I/O worker on the backend's
// socket p (WorkerQueuePairRunner, persistent mode): a connection's rings
// are sessions of those workers. The workers, and with them each socket's
// single AfXdpQueue, outlive connections, so a reconnect never primes a Fill
// ring a second time and every UMEM frame stays accounted for.
import type { AfXdpBackend } from '../backend/af-xdp/af-xdp-backend';
import type { FrameAccounting } from '../io/io-thread-protocol';
import { WorkerQueuePairRunner } from '../io/worker-queue-pair-runner';
import { VhostUserConnection } from './connection';
import { netConfigSpace, offeredFeatures, offeredProtocolFeatures } from './net-features';
import { unixSocket } from './unix-socket';
import { NetMtu } from 'virtio-spec-types';
import { lstatSync, unlinkSync } from 'node:fs';
import { sys } from '../native/sys';

const EFD_CLOEXEC = 0o2000000;
const EFD_NONBLOCK = 0o4000;
const DEFAULT_MAC = new Uint8Array([0x02, 0x00, 0x00, 0x00, 0x00, 0x01]);

export interface VhostUserServerOptions {
  /** Where to listen (a stale socket file there is replaced)... */
  socketPath?: string;
  /** ...or an already listening unix socket handed in (the back-end convention's --fd); owned from here on. */
  listenFd?: number;
  /** Its socket i services queue pair i. Owned by the caller: close it after close(). */
  backend: AfXdpBackend;
  /** For GET_CONFIG (the front end normally owns the MAC). */
  mac?: Uint8Array;
  /** The MTU enforced until the front end sends its own (NET_SET_MTU); default the interface's. */
  mtu?: number;
  /** Offer CSUM and HOST_TSO4/6, done in software (default on). */
  offloads?: boolean;
  /** Offer VHOST_USER_PROTOCOL_F_CONFIG (GET_CONFIG/SET_CONFIG); off by default, QEMU's net front end does not use it. */
  config?: boolean;
  spinRounds?: number;
  /** Log every request (debugging a front end). */
  trace?: boolean;
  log?: (line: string) => void;
}

export interface ConnectionRecord {
  id: number;
  peerPid: number;
  messages: number;
  refused: number;
  reason: string;
}

export class VhostUserServer {
  readonly runner: WorkerQueuePairRunner;
  readonly pairs: number;
  /** Ends when the accept loop has ended (after close()). */
  readonly done: Promise<void>;
  readonly history: ConnectionRecord[] = [];
  private current: VhostUserConnection | undefined;
  private closing = false;
  private closed: Promise<void> | undefined;
  private readonly log: (line: string) => void;

  private constructor(
    private readonly o: VhostUserServerOptions,
    private readonly listenFd: number,
    private readonly wakeFd: number,
  ) {
    this.log = o.log ?? ((line) => void process.stderr.write(`${line}\n`));
    this.pairs = o.backend.sockets.length;
    const none = { rxKick: -1, txKick: -1, rxCall: -1, txCall: -1 };
    this.runner = new WorkerQueuePairRunner({
      regions: [],
      backends: o.backend.sockets.map((s) => ({ kind: 'af-xdp', socket: s.handle() })),
      fds: o.backend.sockets.map(() => ({ ...none })),
      ...(o.spinRounds !== undefined ? { spinRounds: o.spinRounds } : {}),
    });
    this.done = this.acceptLoop();
  }

  static listen(o: VhostUserServerOptions): VhostUserServer {
    if ((o.socketPath === undefined) === (o.listenFd === undefined)) throw new Error('vhost-user: give either a socket path or a listening fd');
    if (o.listenFd !== undefined) {
      if (unixSocket.fdInfo(o.listenFd).kind !== 'socket') throw new Error(`vhost-user: fd ${o.listenFd} is not a socket`);
      unixSocket.fdSetNonBlocking(o.listenFd);
    }
    const listenFd = o.listenFd ?? unixSocket.unixListen(o.socketPath!, 4);
    let wakeFd = -1;
    try {
      wakeFd = sys.eventfdCreate(0, EFD_CLOEXEC | EFD_NONBLOCK);
      return new VhostUserServer(o, listenFd, wakeFd);
    } catch (e) {
      if (wakeFd >= 0) sys.close(wakeFd);
      sys.close(listenFd);
      throw e;
    }
  }

  /** Where the server listens (for log lines). */
  get where(): string {
    return this.o.socketPath ?? `fd ${this.listenFd}`;
  }

  /** The connection being served, if any. */
  get connection(): VhostUserConnection | undefined {
    return this.current;
  }

  /** Where pair p's AF_XDP frames are (published by its worker). */
  frameAccounting(pair: number): FrameAccounting | undefined {
    return this.runner.frameAccounting(pair);
  }

  private async acceptLoop(): Promise<void> {
    const shape = { pairs: this.pairs, mac: this.o.mac ?? DEFAULT_MAC, mtu: this.o.mtu ?? (this.o.backend.ifMtu || NetMtu.ETHERNET), offloads: this.o.offloads ?? true };
    const ctx = {
      runner: this.runner,
      pairs: this.pairs,
      features: offeredFeatures(shape),
      protocolFeatures: offeredProtocolFeatures(this.o.config ?? false),
      config: netConfigSpace(shape),
      mtu: shape.mtu,
      trace: this.o.trace ?? false,
      log: this.log,
    };
    let id = 0;
    while (!this.closing) {
      let fd: number;
      try {
        fd = await unixSocket.unixAcceptAsync(this.listenFd, this.wakeFd);
      } catch (e) {
        // EMFILE and the like: say so, breathe, keep listening.
        this.log(`vhost-user: accept failed: ${(e as Error).message}`);
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      if (fd < 0) break;
      if (this.closing) {
        sys.close(fd);
        break;
      }
      id++;
      let peerPid = -1;
      try {
        peerPid = unixSocket.peerCredentials(fd).pid;
      } catch {
        // Not fatal: only for the log line.
      }
      this.log(`vhost-user: connection ${id} from pid ${peerPid} on ${this.where}`);
      let conn: VhostUserConnection;
      try {
        conn = new VhostUserConnection(fd, ctx);
      } catch (e) {
        this.log(`vhost-user: connection ${id}: ${(e as Error).message}`);
        sys.close(fd);
        continue;
      }
      this.current = conn;
      try {
        await conn.serve();
      } catch (e) {
        // serve() handles the protocol's errors itself; anything else is a bug, reported, not fatal to the server.
        this.log(`vhost-user: connection ${id} failed: ${(e as Error).stack ?? String(e)}`);
      }
      this.current = undefined;
      const rec = { id, peerPid, messages: conn.stats.messages, refused: conn.stats.refused, reason: conn.closeReason };
      this.history.push(rec);
      this.log(`vhost-user: connection ${id} closed (${rec.reason}; ${rec.messages} messages, ${rec.refused} refused)`);
    }
  }

  /** Stops accepting, ends the current connection (its workers stop, memory unmapped, fds closed), stops the workers. */
  close(): Promise<void> {
    this.closed ??= this.shutdown();
    return this.closed;
  }

  private async shutdown(): Promise<void> {
    this.closing = true;
    sys.eventfdWrite(this.wakeFd, 1);
    this.current?.shutdown();
    await this.done;
    await this.runner.close();
    sys.close(this.listenFd);
    sys.close(this.wakeFd);
    try {
      if (this.o.socketPath !== undefined && lstatSync(this.o.socketPath).isSocket()) unlinkSync(this.o.socketPath);
    } catch {
      // Already gone.
    }
  }
}
