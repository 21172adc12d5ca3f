// Main-thread side of the I/O threads (io-thread.ts). Queue pairs map to
// threads as QEMU's iothread-vq-mapping maps virtqueues to iothreads: by
// default each pair has its own, and one thread may serve several. A thread
// lives as long as the runner: the first start() of one of its pairs
// spawns it (or prestart does, at construction), each start() of a pair
// hands it a new session (rings, memory, eventfds), stop() ends only that
// pair's session. A pair's backend queue lives in its thread for the
// thread's whole life, so an AF_XDP Fill ring is primed once and no frame is
// counted twice however often the driver resets or a front end reconnects.
//
// Kicks and used-buffer notifications are eventfds the front end supplies
// (ioeventfd/irqfd under KVM, kick/call fds for vhost-user) or that the
// runner creates.
import { MessageChannel, type MessagePort, Worker } from 'node:worker_threads';
import type { BackendQueueSource } from '../backend/queue-source';
import type { XskSocketHandle } from '../backend/af-xdp/xsk-socket';
import { cachedWorkerSource } from '../host/module-cache';
import { takeThread } from '../host/prestart-threads';
import { sys } from '../native/sys';
import type { PairResume, QueuePairContext, QueuePairRunner, QueuePairSpec } from '../virtio/net/queue-pair-runner';
import { COUNTER_SLOTS, readPairCounters, type DeviceCounter, type PairCounters, type WorkerCounter } from './pair-counters';
import {
  CONTROL_BYTES,
  COUNTERS_OFFSET,
  FIRST_TX_OFFSET,
  IO_THREAD_MODULE,
  PairControl,
  THREAD_CONTROL_BYTES,
  ThreadControl,
  type BackendRebind,
  type FrameAccounting,
  type IoThreadData,
  type PairPositions,
  type QueuePairEventFds,
  type QueuePairSession,
  type SharedRegion,
  threadMapping,
} from './io-thread-protocol';

const EFD_CLOEXEC = 0o2000000;
const EFD_NONBLOCK = 0o4000;
/** Default busy-poll bound of an idle I/O thread (µs): the most the adaptive bound grows to. */
export const DEFAULT_POLL_US = 50;

export interface WorkerRunnerOptions {
  regions: SharedRegion[];
  /** How each pair's thread opens the pair's backend queue (what they refer to stays open while the runner runs). */
  backends: readonly BackendQueueSource[];
  /** Per pair: existing eventfds, or undefined to have the runner create them. */
  fds?: readonly (QueuePairEventFds | undefined)[];
  /**
   * Per pair: the index of the I/O thread that serves it (default: pair i on thread i). Threads are numbered
   * from 0 without gaps; one thread may serve several pairs.
   */
  threadOf?: readonly number[];
  spinRounds?: number;
  /**
   * Longest busy-poll without work before a thread sleeps, in µs (default DEFAULT_POLL_US), as QEMU's
   * poll-max-ns: the bound adapts between 0 and this (pollGrow, pollShrink). On a host with fewer CPUs than
   * busy threads, a thread spinning on an empty ring takes the CPU from the thread that would fill it.
   */
  pollUs?: number;
  /** Factor the poll bound grows by (0: QEMU's default, double). */
  pollGrow?: number;
  /** Divisor the poll bound shrinks by (0: QEMU's default, straight to 0). */
  pollShrink?: number;
  /** Per I/O thread: the host CPU it pins itself to (undefined: not pinned). */
  cpus?: readonly (number | undefined)[];
  /**
   * Wait after a round that moved only a few frames or a transmit kick, in
   * µs (default 0), so work comes in batches (IoThreadData.coalesceUs): for a thread that
   * shares its CPU with the vCPU it serves.
   */
  coalesceUs?: number;
  /** Niceness of every I/O thread (default: inherited). */
  nice?: number;
  /**
   * Start every I/O thread now, before any start(), so its start-up (a Node isolate, its modules, the guest
   * memory's mappings) is done by the time the driver sets DRIVER_OK. Backend queues still open at a pair's
   * first session (an AF_XDP Fill ring is primed only then).
   */
  prestart?: boolean;
  /**
   * Pairs whose backend is guest-umem: the owner's half of a device reset the pair's thread released. Closes
   * the pair's socket (the kernel then writes into no guest buffer it held) and binds a fresh one on the same
   * queue and UMEM; returns its handle for the thread. Required when a backend's kind is 'guest-umem'.
   */
  rebind?(pair: number): XskSocketHandle;
}

/** How long a device reset waits for an I/O thread to let go of the guest buffers the kernel holds. */
export const RESET_WAIT_MS = 5000;

interface IoThread {
  index: number;
  pairs: number[];
  worker: Worker;
  ctl: Int32Array;
  wakeFd: number;
  port: MessagePort;
  exited: Promise<void>;
  dead: boolean;
}

interface PairState {
  control: SharedArrayBuffer;
  ctl: Int32Array;
  /** Generation of the last session started (0: none yet). */
  generation: number;
  /** The context of its current session (a thread that fails reports there). */
  ctx: QueuePairContext | undefined;
  /** Device resets asked of its thread (PairControl.ResetRequest). */
  resets: number;
  /** Why the pair can run no more (a reset its thread did not answer, a rebind that failed). */
  broken: string | undefined;
}

export class WorkerQueuePairRunner implements QueuePairRunner {
  readonly pairs: number;
  /** How many I/O threads serve the pairs. */
  readonly threadCount: number;
  /** The eventfds of each pair (created here when not supplied; replace with setFds). */
  readonly fds: QueuePairEventFds[];
  private readonly threadOf: number[];
  private readonly owned: number[] = [];
  private readonly threads: (IoThread | undefined)[];
  private readonly state: PairState[];
  private stopping: Promise<unknown>[] = [];
  private regions: SharedRegion[];
  private closed = false;
  private closing: Promise<void> | undefined;

  constructor(private readonly o: WorkerRunnerOptions) {
    this.pairs = o.backends.length;
    this.threadOf = threadMapping(this.pairs, o.threadOf);
    this.threadCount = this.pairs === 0 ? 0 : Math.max(...this.threadOf) + 1;
    if (o.cpus && o.cpus.length > this.threadCount) throw new RangeError(`${o.cpus.length} CPUs named for ${this.threadCount} I/O thread(s)`);
    this.regions = o.regions;
    this.threads = new Array<IoThread | undefined>(this.threadCount).fill(undefined);
    this.state = o.backends.map(() => {
      const control = new SharedArrayBuffer(CONTROL_BYTES);
      return { control, ctl: new Int32Array(control, 0, PairControl.Words), generation: 0, ctx: undefined, resets: 0, broken: undefined };
    });
    this.fds = o.backends.map((_, p) => o.fds?.[p] ?? this.createFds());
    if (o.prestart) for (let t = 0; t < this.threadCount; t++) this.thread(t);
  }

  private createFds(): QueuePairEventFds {
    const mk = (): number => {
      const fd = sys.eventfdCreate(0, EFD_CLOEXEC | EFD_NONBLOCK);
      this.owned.push(fd);
      return fd;
    };
    return { rxKick: mk(), txKick: mk(), rxCall: mk(), txCall: mk() };
  }

  /** The I/O thread serving `pair`. */
  threadOfPair(pair: number): number {
    return this.threadOf[pair]!;
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
    const t = this.thread(this.threadOf[spec.pair]!);
    if (t.dead) {
      // Its backend queues died with it: a second thread would prime the Fill ring again with frames the kernel holds.
      process.stderr.write(`xdpvm: I/O thread ${t.index} is gone; queue pair ${spec.pair} stays stopped\n`);
      ctx.markNeedsReset();
      return;
    }
    this.stopPair(spec.pair);
    const s = this.state[spec.pair]!;
    if (s.broken !== undefined) {
      process.stderr.write(`xdpvm: queue pair ${spec.pair} stays stopped: ${s.broken}\n`);
      ctx.markNeedsReset();
      return;
    }
    const generation = ++s.generation;
    const session: QueuePairSession = { regions: this.regions, spec, fds: this.fds[spec.pair]!, generation };
    s.ctx = ctx;
    this.watchBroken(s, generation, ctx);
    t.port.postMessage(session);
    this.ring(t);
  }

  /** Tells a thread to look at its doorbell: it may be asleep in epoll serving its other pairs, or waiting idle. */
  private ring(t: IoThread): void {
    Atomics.add(t.ctl, ThreadControl.Doorbell, 1);
    Atomics.notify(t.ctl, ThreadControl.Doorbell);
    sys.eventfdWrite(t.wakeFd, 1);
  }

  /** Thread `index`, spawned on first use: it serves every pair mapped to it. */
  private thread(index: number): IoThread {
    const existing = this.threads[index];
    if (existing) return existing;
    const pairs = this.threadOf.flatMap((t, p) => (t === index ? [p] : []));
    const control = new SharedArrayBuffer(THREAD_CONTROL_BYTES);
    const wakeFd = sys.eventfdCreate(0, EFD_CLOEXEC | EFD_NONBLOCK);
    const channel = new MessageChannel();
    const cpu = this.o.cpus?.[index];
    const data: IoThreadData = {
      thread: index,
      pairs: pairs.map((p) => ({ pair: p, backend: this.o.backends[p]!, control: this.state[p]!.control })),
      regions: this.regions,
      wakeFd,
      control,
      port: channel.port2,
      spinRounds: this.o.spinRounds ?? 2000,
      pollUs: this.o.pollUs ?? DEFAULT_POLL_US,
      pollGrow: this.o.pollGrow ?? 0,
      pollShrink: this.o.pollShrink ?? 0,
      coalesceUs: this.o.coalesceUs ?? 0,
      ...(this.o.nice !== undefined ? { nice: this.o.nice } : {}),
      ...(cpu !== undefined ? { cpu } : {}),
    };
    const transferList = [channel.port2];
    // A thread the CLI started before the VMM loaded (vmm/run-threads.ts) takes its data as its first message.
    const prestarted = takeThread(IO_THREAD_MODULE);
    if (prestarted) prestarted.postMessage(data, transferList);
    const worker = prestarted ?? new Worker(cachedWorkerSource(IO_THREAD_MODULE), { eval: true, workerData: data, transferList });
    const t: IoThread = {
      index,
      pairs,
      worker,
      ctl: new Int32Array(control, 0, ThreadControl.Words),
      wakeFd,
      port: channel.port1,
      exited: Promise.resolve(),
      dead: false,
    };
    t.exited = new Promise<void>((resolve) => {
      worker.once('exit', () => {
        t.dead = true;
        // Whatever it served stops being serviced: each running pair's device needs a reset.
        if (!this.closed) for (const p of pairs) if (this.isSessionOpen(p)) this.state[p]!.ctx?.markNeedsReset();
        resolve();
      });
      worker.once('error', (e) => {
        process.stderr.write(`xdpvm: I/O thread ${index} (queue pairs ${pairs.join(', ')}) failed: ${e.message}\n`);
      });
    });
    this.threads[index] = t;
    return t;
  }

  /** A session started and neither ended nor asked to stop. */
  private isSessionOpen(pair: number): boolean {
    const s = this.state[pair]!;
    return s.generation > 0 && Atomics.load(s.ctl, PairControl.Stop) < s.generation;
  }

  /** A broken ring is reported once, from the thread, through shared memory. */
  private watchBroken(s: PairState, generation: number, ctx: QueuePairContext): void {
    const seen = Atomics.load(s.ctl, PairControl.Broken);
    const reportBroken = (): void => {
      if (Atomics.load(s.ctl, PairControl.Broken) === generation) ctx.markNeedsReset();
    };
    const waiting = Atomics.waitAsync(s.ctl, PairControl.Broken, seen);
    if (waiting.async) void waiting.value.then(reportBroken);
    else reportBroken();
  }

  kick(pair: number): void {
    const fds = this.fds[pair];
    if (fds) sys.eventfdWrite(fds.txKick, 1);
  }

  /** Whether the pair's thread is servicing a session of it. */
  isRunning(pair: number): boolean {
    const s = this.state[pair];
    return s !== undefined && Atomics.load(s.ctl, PairControl.Running) === 1;
  }

  /**
   * Live device and thread counters of a pair by name (updated by its thread every few rounds and before it
   * sleeps; cumulative over the pair's sessions, and still readable once the thread is gone). The whole table: stats().
   */
  counters(pair: number): Record<DeviceCounter | WorkerCounter, number> | undefined {
    const s = this.stats(pair);
    return s ? { ...s.device, ...s.worker } : undefined;
  }

  /** Every counter of a pair (pair-counters.ts): device, thread, backend, ring errors and why a ring broke. */
  stats(pair: number): PairCounters | undefined {
    const s = this.state[pair];
    if (!s || s.generation === 0) return undefined;
    const c = s.ctl;
    return readPairCounters(new Float64Array(s.control, COUNTERS_OFFSET, COUNTER_SLOTS), c[PairControl.BrokenCause]!, c[PairControl.RxError]!, c[PairControl.TxError]!,
      this.o.backends[pair]!.kind === 'guest-umem');
  }

  /** When the pair's thread first handed a frame of it to the backend (CLOCK_MONOTONIC ms), or undefined. */
  firstTxAt(pair: number): number | undefined {
    const s = this.state[pair];
    const t = s ? new Float64Array(s.control, FIRST_TX_OFFSET, 1)[0]! : 0;
    return t > 0 ? t : undefined;
  }

  /** Linux thread id of the thread serving the pair, 0 before it has started. */
  threadId(pair: number): number {
    const s = this.state[pair];
    return s ? Atomics.load(s.ctl, PairControl.Tid) : 0;
  }

  /** Where the pair's backend frames are, as its thread last published (also between sessions). */
  frameAccounting(pair: number): FrameAccounting | undefined {
    const s = this.state[pair];
    if (!s || !this.threads[this.threadOf[pair]!]) return undefined;
    const c = s.ctl;
    const a = {
      pool: c[PairControl.FramesPool]!,
      fill: c[PairControl.FramesFill]!,
      rx: c[PairControl.FramesRx]!,
      tx: c[PairControl.FramesTx]!,
      completion: c[PairControl.FramesCompletion]!,
      total: 0,
      frameCount: c[PairControl.FrameCount]!,
    };
    a.total = a.pool + a.fill + a.rx + a.tx + a.completion;
    return a;
  }

  /**
   * Stops the pair's current session and resolves, once its thread no longer
   * touches the pair's rings, memory or eventfds, with where the rings
   * stopped (undefined when nothing ran or the thread died).
   */
  async stop(pair: number): Promise<PairPositions | undefined> {
    const s = this.state[pair];
    const t = this.threads[this.threadOf[pair] ?? -1];
    if (!s || !t || s.generation === 0) return undefined;
    const generation = s.generation;
    this.stopPair(pair);
    if (!(await this.sessionEnded(t, s, generation))) return undefined;
    const c = s.ctl;
    return {
      rx: { nextAvail: c[PairControl.RxNextAvail]!, nextUsed: c[PairControl.RxNextUsed]! },
      tx: { nextAvail: c[PairControl.TxNextAvail]!, nextUsed: c[PairControl.TxNextUsed]! },
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

  /**
   * Device reset: every pair's session stops, and a pair whose backend holds guest buffers (guest-umem) has
   * them taken back before this returns (§2.4: the driver may reuse its buffers once it reads status 0).
   */
  stopAll(): void {
    for (let p = 0; p < this.pairs; p++) this.stopPair(p);
    for (let p = 0; p < this.pairs; p++) if (this.o.backends[p]!.kind === 'guest-umem') this.resetBackend(p);
  }

  /**
   * Asks the pair's thread to let go of what its backend queue posted to the kernel, waits for it (at most
   * RESET_WAIT_MS: the vCPU that wrote the status waits too) and rebinds the socket when the kernel held any.
   * Control words only, and one message with the fresh socket.
   */
  private resetBackend(pair: number): void {
    const s = this.state[pair]!;
    const t = this.threads[this.threadOf[pair]!];
    // Never serviced: its queue was never opened, nothing was posted.
    if (!t || s.generation === 0 || s.broken !== undefined) return;
    let rebind = true;
    if (!t.dead) {
      const seq = ++s.resets;
      Atomics.store(s.ctl, PairControl.ResetRequest, seq);
      this.ring(t);
      const deadline = performance.now() + RESET_WAIT_MS;
      for (;;) {
        const done = Atomics.load(s.ctl, PairControl.ResetDone);
        if (done === seq) break;
        const left = deadline - performance.now();
        if (left <= 0) {
          // Its thread may still touch the socket's rings: they stay mapped, and the pair stays stopped.
          s.broken = `device reset: its I/O thread did not give back the guest buffers the kernel holds within ${RESET_WAIT_MS / 1000} s`;
          process.stderr.write(`xdpvm: queue pair ${pair}: ${s.broken}; the device is broken until the process restarts\n`);
          return;
        }
        Atomics.wait(s.ctl, PairControl.ResetDone, done, Math.min(left, 50));
      }
      rebind = s.ctl[PairControl.ResetRebind] === 1;
    }
    if (!rebind) return;
    try {
      if (!this.o.rebind) throw new Error('no rebind for a guest-umem backend');
      const handle = this.o.rebind(pair);
      if (!t.dead) {
        const msg: BackendRebind = { pair, rebind: handle };
        t.port.postMessage(msg);
        this.ring(t);
      }
    } catch (e) {
      s.broken = `device reset: cannot bind a fresh socket: ${(e as Error).message}`;
      process.stderr.write(`xdpvm: queue pair ${pair}: ${s.broken}\n`);
    }
  }

  /** Resolves when every stopped session has ended (call before closing sockets, eventfds or unmapping memory). */
  async drained(): Promise<void> {
    while (this.stopping.length > 0) await Promise.all(this.stopping.splice(0));
  }

  /**
   * Stops the threads and closes the eventfds this runner created.
   * counters() and frameAccounting() still report what the threads
   * published last.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.closed = true;
    // No reset: the sockets close with the backend.
    for (let p = 0; p < this.pairs; p++) this.stopPair(p);
    await this.drained();
    for (const t of this.threads) {
      if (!t) continue;
      Atomics.store(t.ctl, ThreadControl.Exit, 1);
      this.ring(t);
      await t.exited;
      t.port.close();
      sys.close(t.wakeFd);
    }
    for (const fd of this.owned.splice(0)) sys.close(fd);
  }

  /** Resolves true once session `generation` of a pair has ended, false if its thread died first. */
  private async sessionEnded(t: IoThread, s: PairState, generation: number): Promise<boolean> {
    for (;;) {
      const done = Atomics.load(s.ctl, PairControl.Done);
      if (done >= generation) return true;
      if (t.dead) return false;
      const r = Atomics.waitAsync(s.ctl, PairControl.Done, done, 100);
      if (r.async) await Promise.race([r.value, t.exited]);
    }
  }

  private stopPair(pair: number): void {
    const s = this.state[pair]!;
    const t = this.threads[this.threadOf[pair]!];
    if (!t || s.generation === 0) return;
    if (Atomics.load(s.ctl, PairControl.Stop) >= s.generation) return;
    Atomics.store(s.ctl, PairControl.Stop, s.generation);
    if (t.dead) return;
    sys.eventfdWrite(t.wakeFd, 1);
    this.stopping.push(this.sessionEnded(t, s, s.generation));
  }
}
