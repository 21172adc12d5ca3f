// Main-thread side of the I/O workers: one worker_thread per queue pair,
// started at DRIVER_OK with the pair's ring configs, the guest memory
// mappings and its AF_XDP socket; stopped on reset through a flag and a
// wake-up eventfd. Kicks and used-buffer notifications are eventfds the
// front end supplies (ioeventfd/irqfd under KVM, kick/call fds for
// vhost-user) or that the runner creates.
//
// Two lifetimes:
// - one-shot (default, the VMM): start() spawns a worker for the pair, a
//   stop ends it;
// - persistent (the vhost-user server): the first start() of a pair spawns
//   its worker, which then stays with the pair's AF_XDP socket until
//   close(); each start() hands it a new session (rings, memory, fds) and
//   stop() ends only that session. One AfXdpQueue per socket for the
//   socket's whole life: the Fill ring is primed once, and frames are never
//   counted twice however often a front end reconnects.
import { MessageChannel, type MessagePort, Worker } from 'node:worker_threads';
import type { XskSocketHandle } from '../backend/af-xdp/xsk-socket';
import { cachedWorkerSource } from '../host/module-cache';
import { takeThread } from '../host/prestart-threads';
import { sys } from '../native/sys';
import type { PairResume, QueuePairContext, QueuePairRunner, QueuePairSpec } from '../virtio/net/queue-pair-runner';
import { COUNTER_SLOTS, readPairCounters, type DeviceCounter, type PairCounters, type WorkerCounter } from './pair-counters';
import {
  CONTROL_BYTES,
  COUNTERS_OFFSET,
  Control,
  FIRST_TX_OFFSET,
  QUEUE_PAIR_WORKER,
  type FrameAccounting,
  type PairPositions,
  type QueuePairEventFds,
  type QueuePairSession,
  type QueuePairWorkerData,
  type SharedRegion,
} from './queue-pair-thread';

const EFD_CLOEXEC = 0o2000000;
const EFD_NONBLOCK = 0o4000;
/** Default busy-poll bound of an idle worker (µs). */
export const DEFAULT_POLL_US = 50;

export interface WorkerRunnerOptions {
  regions: SharedRegion[];
  /** One AF_XDP socket per pair (owned by the caller, kept open while workers run). */
  sockets: readonly XskSocketHandle[];
  /** Per pair: existing eventfds, or undefined to have the runner create them. */
  fds?: readonly (QueuePairEventFds | undefined)[];
  spinRounds?: number;
  /**
   * Longest busy-poll without work before the worker sleeps, in µs (default DEFAULT_POLL_US), as QEMU's
   * poll-max-ns: on a host with fewer CPUs than busy threads, a worker spinning on an empty ring takes the
   * CPU from the thread that would fill it (the guest's vCPU, the sender's softirq work).
   */
  pollUs?: number;
  /** Per pair: the host CPU its worker pins itself to (undefined: not pinned). */
  cpus?: readonly (number | undefined)[];
  /**
   * Wait after a round that moved only a few frames, in µs (default 0), so
   * work comes in batches (QueuePairWorkerData.coalesceUs): for a worker that
   * shares its CPU with the vCPU it serves.
   */
  coalesceUs?: number;
  /** Niceness of every worker thread (default: inherited). */
  nice?: number;
  /** Keep one worker per pair for the runner's lifetime, servicing one session per start(). */
  persistent?: boolean;
  /**
   * Persistent runners: start every pair's worker now, before any start(), so its thread start-up is done by
   * the time the driver sets DRIVER_OK (the VMM's boot to first packet). Its AF_XDP Fill ring is still primed
   * only at the first session.
   */
  prestart?: boolean;
}

interface PairWorker {
  worker: Worker;
  control: SharedArrayBuffer;
  ctl: Int32Array;
  wakeFd: number;
  /** Persistent workers: where later sessions are posted. */
  port: MessagePort | undefined;
  exited: Promise<void>;
  dead: boolean;
  /** Generation of the last session started (0: a prestarted worker waiting for its first). */
  generation: number;
  /** The context of its current session (a worker that fails reports there). */
  ctx: QueuePairContext | undefined;
}

export class WorkerQueuePairRunner implements QueuePairRunner {
  readonly pairs: number;
  /** The eventfds of each pair (created here when not supplied; replace with setFds). */
  readonly fds: QueuePairEventFds[];
  private readonly owned: number[] = [];
  private readonly running = new Map<number, PairWorker>();
  /** Each pair's last control block: its counters stay readable after its worker has gone. */
  private readonly blocks = new Map<number, SharedArrayBuffer>();
  private stopping: Promise<unknown>[] = [];
  private regions: SharedRegion[];
  private closed = false;
  private closing: Promise<void> | undefined;

  constructor(private readonly o: WorkerRunnerOptions) {
    this.pairs = o.sockets.length;
    this.regions = o.regions;
    this.fds = o.sockets.map((_, p) => o.fds?.[p] ?? this.createFds());
    if (o.prestart && o.persistent) for (let p = 0; p < this.pairs; p++) this.spawn(p, undefined);
  }

  private createFds(): QueuePairEventFds {
    const mk = (): number => {
      const fd = sys.eventfdCreate(0, EFD_CLOEXEC | EFD_NONBLOCK);
      this.owned.push(fd);
      return fd;
    };
    return { rxKick: mk(), txKick: mk(), rxCall: mk(), txCall: mk() };
  }

  /** Guest memory for the sessions started from now on (stop the pairs before unmapping the old one). */
  setRegions(regions: SharedRegion[]): void {
    this.regions = regions;
  }

  /** Eventfds of a pair for the sessions started from now on (the caller owns them; stop the pair before closing the old ones). */
  setFds(pair: number, fds: QueuePairEventFds): void {
    if (pair < 0 || pair >= this.pairs) throw new RangeError(`queue pair ${pair} out of range`);
    this.fds[pair] = fds;
  }

  start(spec: QueuePairSpec, ctx: QueuePairContext): void {
    if (this.closed) return;
    if (spec.pair < 0 || spec.pair >= this.pairs) throw new RangeError(`queue pair ${spec.pair} out of range`);
    const existing = this.running.get(spec.pair);
    if (this.o.persistent && existing && !existing.dead) {
      this.stopPair(spec.pair);
      const generation = ++existing.generation;
      const session: QueuePairSession = { regions: this.regions, spec, fds: this.fds[spec.pair]!, generation };
      existing.ctx = ctx;
      this.watchBroken(existing, generation, ctx);
      this.blocks.set(spec.pair, existing.control);
      existing.port!.postMessage(session);
      Atomics.add(existing.ctl, Control.Doorbell, 1);
      Atomics.notify(existing.ctl, Control.Doorbell);
      return;
    }
    if (this.o.persistent && existing?.dead) {
      // Its AfXdpQueue died with it: a second one would prime the Fill ring again with frames the kernel holds.
      process.stderr.write(`xdpvm: I/O worker of queue pair ${spec.pair} is gone; the pair stays stopped\n`);
      ctx.markNeedsReset();
      return;
    }
    this.stopPair(spec.pair);
    const w = this.spawn(spec.pair, { regions: this.regions, spec, fds: this.fds[spec.pair]!, generation: 1 });
    w.ctx = ctx;
    this.watchBroken(w, 1, ctx);
    this.blocks.set(spec.pair, w.control);
  }

  /**
   * A worker for `pair`, servicing `session` at once, or (persistent runners) waiting for its first session:
   * a thread's start-up (a Node isolate, its modules) then happens before the driver needs the pair.
   */
  private spawn(pair: number, session: QueuePairSession | undefined): PairWorker {
    const control = new SharedArrayBuffer(CONTROL_BYTES);
    const ctl = new Int32Array(control, 0, Control.Words);
    const wakeFd = sys.eventfdCreate(0, EFD_CLOEXEC | EFD_NONBLOCK);
    const channel = this.o.persistent ? new MessageChannel() : undefined;
    const data: QueuePairWorkerData = {
      pair,
      ...(session ? { session } : { regions: this.regions }),
      socket: this.o.sockets[pair]!,
      wakeFd,
      control,
      spinRounds: this.o.spinRounds ?? 2000,
      pollUs: this.o.pollUs ?? DEFAULT_POLL_US,
      coalesceUs: this.o.coalesceUs ?? 0,
      ...(this.o.nice !== undefined ? { nice: this.o.nice } : {}),
      ...(this.o.cpus?.[pair] !== undefined ? { cpu: this.o.cpus[pair] } : {}),
      ...(channel ? { port: channel.port2 } : {}),
    };
    const transferList = channel ? [channel.port2] : [];
    // A thread the CLI started before the VMM loaded (vmm/run-threads.ts) takes its data as its first message.
    const prestarted = takeThread(QUEUE_PAIR_WORKER);
    if (prestarted) prestarted.postMessage(data, transferList);
    const worker = prestarted ?? new Worker(cachedWorkerSource(QUEUE_PAIR_WORKER), { eval: true, workerData: data, transferList });
    const w: PairWorker = {
      worker,
      control,
      ctl,
      wakeFd,
      port: channel?.port1,
      exited: Promise.resolve(),
      dead: false,
      generation: session ? 1 : 0,
      ctx: undefined,
    };
    w.exited = new Promise<void>((resolve) => {
      worker.once('exit', () => {
        w.dead = true;
        resolve();
      });
      worker.once('error', (e) => {
        process.stderr.write(`xdpvm: I/O worker of queue pair ${pair} failed: ${e.message}\n`);
        w.ctx?.markNeedsReset();
      });
    });
    this.running.set(pair, w);
    return w;
  }

  /** A broken ring is reported once, from the worker, through shared memory. */
  private watchBroken(w: PairWorker, generation: number, ctx: QueuePairContext): void {
    const seen = Atomics.load(w.ctl, Control.Broken);
    const reportBroken = (): void => {
      if (Atomics.load(w.ctl, Control.Broken) === generation) ctx.markNeedsReset();
    };
    const waiting = Atomics.waitAsync(w.ctl, Control.Broken, seen);
    if (waiting.async) void waiting.value.then(reportBroken);
    else reportBroken();
  }

  kick(pair: number): void {
    const fds = this.fds[pair];
    if (fds) sys.eventfdWrite(fds.txKick, 1);
  }

  /** Whether the worker of `pair` is servicing a session. */
  isRunning(pair: number): boolean {
    const r = this.running.get(pair);
    return r !== undefined && Atomics.load(r.ctl, Control.Running) === 1;
  }

  /**
   * Live device and worker counters of a pair by name (updated by its worker every few rounds and before it
   * sleeps; cumulative over a worker's sessions, and still readable once it is gone). The whole table: stats().
   */
  counters(pair: number): Record<DeviceCounter | WorkerCounter, number> | undefined {
    const s = this.stats(pair);
    return s ? { ...s.device, ...s.worker } : undefined;
  }

  /** Every counter of a pair (pair-counters.ts): device, worker, backend, ring errors and why a ring broke. */
  stats(pair: number): PairCounters | undefined {
    const control = this.blocks.get(pair);
    if (!control) return undefined;
    const c = new Int32Array(control, 0, Control.Words);
    return readPairCounters(new Float64Array(control, COUNTERS_OFFSET, COUNTER_SLOTS), c[Control.BrokenCause]!, c[Control.RxError]!, c[Control.TxError]!);
  }

  /** When the pair's worker first handed a frame to the kernel (CLOCK_MONOTONIC ms), or undefined. */
  firstTxAt(pair: number): number | undefined {
    const control = this.blocks.get(pair);
    const t = control ? new Float64Array(control, FIRST_TX_OFFSET, 1)[0]! : 0;
    return t > 0 ? t : undefined;
  }

  /** Linux thread id of the pair's (last) worker, 0 before it has started. */
  threadId(pair: number): number {
    const control = this.blocks.get(pair);
    return control ? Atomics.load(new Int32Array(control, 0, Control.Words), Control.Tid) : 0;
  }

  /** Where the pair's AF_XDP frames are, as its worker last published (persistent workers: also between sessions). */
  frameAccounting(pair: number): FrameAccounting | undefined {
    const r = this.running.get(pair);
    if (!r) return undefined;
    const c = r.ctl;
    const a = {
      pool: c[Control.FramesPool]!,
      fill: c[Control.FramesFill]!,
      rx: c[Control.FramesRx]!,
      tx: c[Control.FramesTx]!,
      completion: c[Control.FramesCompletion]!,
      total: 0,
      frameCount: c[Control.FrameCount]!,
    };
    a.total = a.pool + a.fill + a.rx + a.tx + a.completion;
    return a;
  }

  /**
   * Stops the pair's current session and resolves, once the worker no longer
   * touches its rings, memory or eventfds, with where the rings stopped
   * (undefined when nothing ran or the worker died).
   */
  async stop(pair: number): Promise<PairPositions | undefined> {
    const w = this.running.get(pair);
    if (!w) return undefined;
    const generation = w.generation;
    this.stopPair(pair);
    if (!(await this.sessionEnded(w, generation))) return undefined;
    const c = w.ctl;
    return {
      rx: { nextAvail: c[Control.RxNextAvail]!, nextUsed: c[Control.RxNextUsed]! },
      tx: { nextAvail: c[Control.TxNextAvail]!, nextUsed: c[Control.TxNextUsed]! },
    };
  }

  /** VQ_PAIRS_SET disabling a pair: stop its session; a later start() resumes its rings where they stopped. */
  async suspend(pair: number): Promise<PairResume | undefined> {
    const at = await this.stop(pair);
    if (!at) return undefined;
    return {
      rx: { availBase: at.rx.nextAvail, usedBase: at.rx.nextUsed },
      tx: { availBase: at.tx.nextAvail, usedBase: at.tx.nextUsed },
    };
  }

  stopAll(): void {
    for (const p of [...this.running.keys()]) this.stopPair(p);
  }

  /** Resolves when every stopped session has ended (call before closing sockets, eventfds or unmapping memory). */
  async drained(): Promise<void> {
    while (this.stopping.length > 0) await Promise.all(this.stopping.splice(0));
  }

  /**
   * Stops the workers (persistent ones too) and closes the eventfds this
   * runner created. counters() and frameAccounting() still report what the
   * persistent workers published last.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.closed = true;
    this.stopAll();
    await this.drained();
    for (const w of this.running.values()) {
      Atomics.store(w.ctl, Control.Exit, 1);
      Atomics.add(w.ctl, Control.Doorbell, 1);
      Atomics.notify(w.ctl, Control.Doorbell);
      sys.eventfdWrite(w.wakeFd, 1);
      await w.exited;
      w.port?.close();
      sys.close(w.wakeFd);
    }
    for (const fd of this.owned.splice(0)) sys.close(fd);
  }

  /** Resolves true once session `generation` has ended, false if the worker died first. */
  private async sessionEnded(w: PairWorker, generation: number): Promise<boolean> {
    for (;;) {
      const done = Atomics.load(w.ctl, Control.Done);
      if (done >= generation) return true;
      if (w.dead) return false;
      const r = Atomics.waitAsync(w.ctl, Control.Done, done, 100);
      if (r.async) await Promise.race([r.value, w.exited]);
    }
  }

  private stopPair(pair: number): void {
    const r = this.running.get(pair);
    if (!r) return;
    if (Atomics.load(r.ctl, Control.Stop) >= r.generation) return;
    Atomics.store(r.ctl, Control.Stop, r.generation);
    sys.eventfdWrite(r.wakeFd, 1);
    if (this.o.persistent && !r.dead) {
      this.stopping.push(this.sessionEnded(r, r.generation));
      return;
    }
    // One-shot: the worker exits after its session.
    this.running.delete(pair);
    this.stopping.push(
      r.exited.then(() => {
        sys.close(r.wakeFd);
      }),
    );
  }
}
