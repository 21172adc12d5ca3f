// Main-thread side of the I/O workers: one worker_thread per queue pair,
// started at DRIVER_OK with the pair's ring configs, the guest memory
// mappings and its AF_XDP socket; stopped on reset through a flag and a
// wake-up eventfd. Kicks and used-buffer notifications are eventfds the
// front end supplies (ioeventfd/irqfd under KVM, kick/call fds for
// vhost-user) or that the runner creates.
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { XskSocketHandle } from '../backend/af-xdp/xsk-socket';
import { kvmNative } from '../native/kvm';
import type { DeviceContext } from '../virtio/device';
import type { QueuePairRunner, QueuePairSpec } from '../virtio/net/queue-pair-runner';
import { COUNTER_NAMES, CONTROL_BYTES, Control, type QueuePairEventFds, type QueuePairWorkerData, type SharedRegion } from './queue-pair-thread';

const WORKER = path.join(__dirname, 'queue-pair-worker.js');
const EFD_CLOEXEC = 0o2000000;
const EFD_NONBLOCK = 0o4000;

export interface WorkerRunnerOptions {
  regions: SharedRegion[];
  /** One AF_XDP socket per pair (owned by the caller, kept open while workers run). */
  sockets: readonly XskSocketHandle[];
  /** Per pair: existing eventfds, or undefined to have the runner create them. */
  fds?: readonly (QueuePairEventFds | undefined)[];
  spinRounds?: number;
}

interface Running {
  worker: Worker;
  control: SharedArrayBuffer;
  wakeFd: number;
  exited: Promise<void>;
}

export class WorkerQueuePairRunner implements QueuePairRunner {
  readonly pairs: number;
  /** The eventfds of each pair (created here when not supplied). */
  readonly fds: QueuePairEventFds[];
  private readonly owned: number[] = [];
  private readonly running = new Map<number, Running>();
  private stopping: Promise<void>[] = [];

  constructor(private readonly o: WorkerRunnerOptions) {
    this.pairs = o.sockets.length;
    this.fds = o.sockets.map((_, p) => o.fds?.[p] ?? this.createFds());
  }

  private createFds(): QueuePairEventFds {
    const mk = (): number => {
      const fd = kvmNative.eventfdCreate(0, EFD_CLOEXEC | EFD_NONBLOCK);
      this.owned.push(fd);
      return fd;
    };
    return { rxKick: mk(), txKick: mk(), rxCall: mk(), txCall: mk() };
  }

  start(spec: QueuePairSpec, ctx: DeviceContext): void {
    this.stopPair(spec.pair);
    const control = new SharedArrayBuffer(CONTROL_BYTES);
    const wakeFd = kvmNative.eventfdCreate(0, EFD_CLOEXEC | EFD_NONBLOCK);
    const data: QueuePairWorkerData = {
      regions: this.o.regions,
      spec,
      socket: this.o.sockets[spec.pair]!,
      fds: this.fds[spec.pair]!,
      wakeFd,
      control,
      spinRounds: this.o.spinRounds ?? 2000,
    };
    const worker = new Worker(WORKER, { workerData: data });
    const ctl = new Int32Array(control, 0, Control.Words);
    // A broken ring is reported once, from the worker, through shared memory.
    const waiting = Atomics.waitAsync(ctl, Control.Broken, 0);
    const reportBroken = (): void => {
      if (Atomics.load(ctl, Control.Broken) === 1) ctx.markNeedsReset();
    };
    if (waiting.async) void waiting.value.then(reportBroken);
    else reportBroken();
    const exited = new Promise<void>((resolve) => {
      worker.once('exit', () => resolve());
      worker.once('error', (e) => {
        process.stderr.write(`xdpvm: I/O worker of queue pair ${spec.pair} failed: ${e.message}\n`);
        ctx.markNeedsReset();
      });
    });
    this.running.set(spec.pair, { worker, control, wakeFd, exited });
  }

  kick(pair: number): void {
    const fds = this.fds[pair];
    if (fds) kvmNative.eventfdWrite(fds.txKick, 1);
  }

  /** Whether the worker of `pair` has started its loop. */
  isRunning(pair: number): boolean {
    const r = this.running.get(pair);
    return r !== undefined && Atomics.load(new Int32Array(r.control, 0, Control.Words), Control.Running) === 1;
  }

  /** Live counters of a pair (updated by its worker every few rounds and before it sleeps). */
  counters(pair: number): Record<(typeof COUNTER_NAMES)[number], number> | undefined {
    const r = this.running.get(pair);
    if (!r) return undefined;
    const live = new Float64Array(r.control, Control.Words * 4, COUNTER_NAMES.length);
    return Object.fromEntries(COUNTER_NAMES.map((n, i) => [n, live[i]!])) as Record<(typeof COUNTER_NAMES)[number], number>;
  }

  stopAll(): void {
    for (const p of [...this.running.keys()]) this.stopPair(p);
  }

  /** Resolves when every stopped worker has exited (call before closing sockets or unmapping memory). */
  async drained(): Promise<void> {
    await Promise.all(this.stopping);
    this.stopping = [];
  }

  /** Stops the workers and closes the eventfds this runner created. */
  async close(): Promise<void> {
    this.stopAll();
    await this.drained();
    for (const fd of this.owned.splice(0)) kvmNative.close(fd);
  }

  private stopPair(pair: number): void {
    const r = this.running.get(pair);
    if (!r) return;
    this.running.delete(pair);
    const ctl = new Int32Array(r.control, 0, Control.Words);
    Atomics.store(ctl, Control.Stop, 1);
    kvmNative.eventfdWrite(r.wakeFd, 1);
    this.stopping.push(
      r.exited.then(() => {
        kvmNative.close(r.wakeFd);
      }),
    );
  }
}
