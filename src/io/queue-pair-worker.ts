// The I/O worker of one virtio-net queue pair: the only thread touching that
// pair's virtqueues and its AF_XDP socket. It busy-polls while there is
// traffic (guest kicks disabled), and when idle arms the guest's kicks,
// re-checks, and sleeps in epoll on the kick eventfds and the socket.
//
// The AfXdpQueue (frame pool, Fill priming) is built once per worker: a
// persistent worker services session after session on the same socket
// without priming its Fill ring twice (every UMEM frame stays in exactly one
// place: the pool or one of the four rings).
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import { AfXdpQueue } from '../backend/af-xdp/af-xdp-queue';
import { XskSocket } from '../backend/af-xdp/xsk-socket';
import { Epoll, EpollEvents } from '../host/epoll';
import { pinThisThread, setThreadNice, thisThreadId } from '../host/cpu-affinity';
import { GuestMemory } from '../memory/guest-memory';
import { sys } from '../native/sys';
import { NetQueuePair } from '../virtio/net/queue-pair';
import { BACKEND_COUNTERS, BrokenCause, COUNTER_BASE, COUNTER_SLOTS, DEVICE_COUNTERS, workerSlot } from './pair-counters';
import { Control, COUNTERS_OFFSET, FIRST_TX_OFFSET, type QueuePairSession, type QueuePairWorkerData, type SharedRegion } from './queue-pair-thread';

const TAG_RX_KICK = 0;
const TAG_TX_KICK = 1;
const TAG_SOCKET = 2;
const TAG_WAKE = 3;
const SLEEP_MS = 200;
/** First timeout of a sleep that waits for a batch of receive buffers (NetQueuePair.rxDeferred). */
const DEFER_MIN_MS = 1;
const IDLE_PUBLISH_MS = 100;
/** A round that moved fewer frames than this waits QueuePairWorkerData.coalesceUs before the next. */
const COALESCE_FRAMES = 16;
/** What the coalescing wait sleeps on: a word nobody changes (Atomics.wait takes fractions of a ms). */
const nap = new Int32Array(new SharedArrayBuffer(4));
const FIRST_SESSION_RECHECK_MS = 2;
// Slots of the worker's own counters (pair-counters.ts), incremented in place in the shared table.
const W_ROUNDS = workerSlot('rounds');
const W_SLEEPS = workerSlot('sleeps');
const W_WAKEUPS = workerSlot('wakeups');
const W_SLEPT_US = workerSlot('sleptUs');
const W_KICKS_READ = workerSlot('kicksRead');
const W_RX_DISCARDED = workerSlot('rxDiscarded');
const D0 = COUNTER_BASE.device;
const B0 = COUNTER_BASE.backend;
const E0 = COUNTER_BASE.queueErrors;

function run(d: QueuePairWorkerData): void {
  if (d.cpu !== undefined) pinThisThread(d.cpu, `I/O worker of queue pair ${d.pair}`);
  const ctl = new Int32Array(d.control, 0, Control.Words);
  ctl[Control.Tid] = thisThreadId();
  if (d.nice !== undefined) setThreadNice(ctl[Control.Tid]!, d.nice, `I/O worker of queue pair ${d.pair}`);
  // Views of guest memory by mapping, kept across sessions: each alias is an ArrayBuffer V8 counts as external
  // memory, and tens of MiB of it set off garbage collections.
  const aliases = new Map<string, Uint8Array>();
  const keyOf = (r: SharedRegion): string => `${r.address}:${r.offset ?? 0}:${r.length}`;
  const aliasOf = (r: SharedRegion): Uint8Array => {
    const skip = r.offset ?? 0;
    const key = keyOf(r);
    let bytes = aliases.get(key);
    if (!bytes) aliases.set(key, (bytes = new Uint8Array(sys.alias(r.address, skip + r.length), skip, r.length)));
    return bytes;
  };
  // The socket's mappings are seen at once; a prestarted worker also maps the guest memory it was told of
  // while it waits (the collections that follow happen before the driver needs the pair, not after).
  const socket = XskSocket.fromHandle(d.socket);
  for (const r of d.regions ?? []) aliasOf(r);
  // A prestarted worker: its queue (and the Fill ring's priming) waits for the driver, as if started then.
  const first = d.session ?? firstSession(d, ctl);
  if (!first) {
    d.port?.close();
    return;
  }
  const live = new Float64Array(d.control, COUNTERS_OFFSET, COUNTER_SLOTS);
  const firstTx = new Float64Array(d.control, FIRST_TX_OFFSET, 1);
  const queue = new AfXdpQueue(socket);
  /** Device and queue-error counts of the sessions already over (each session's NetQueuePair starts from 0). */
  const past = new Float64Array(COUNTER_SLOTS);
  const bc = queue.counters;

  const publishFrames = (): void => {
    const a = queue.frameAccounting();
    ctl[Control.FramesPool] = a.pool;
    ctl[Control.FramesFill] = a.fill;
    ctl[Control.FramesRx] = a.rx;
    ctl[Control.FramesTx] = a.tx;
    ctl[Control.FramesCompletion] = a.completion;
    ctl[Control.FrameCount] = queue.frameCount;
  };

  const serve = (s: QueuePairSession): void => {
    const { fds, spec, generation } = s;
    Atomics.store(ctl, Control.Running, 1);
    Atomics.notify(ctl, Control.Running);
    ctl[Control.BrokenCause] = BrokenCause.None;
    ctl[Control.RxError] = 0;
    ctl[Control.TxError] = 0;
    const broken = (cause: BrokenCause, rxError = 0, txError = 0): void => {
      ctl[Control.BrokenCause] = cause;
      ctl[Control.RxError] = rxError;
      ctl[Control.TxError] = txError;
      Atomics.store(ctl, Control.Broken, generation);
      Atomics.notify(ctl, Control.Broken);
    };
    if (spec.discardPendingRx) {
      // What arrived while no ring ran belongs to nobody: drop it (and give the kernel its frames back).
      // Bounded: under a flood, newer frames are simply the new front end's.
      for (let k = 0; k < 64; k++) {
        const n = queue.rxPeek(256);
        if (n === 0) break;
        queue.rxRelease(n);
        live[W_RX_DISCARDED] += n;
      }
    }
    let pair: NetQueuePair | undefined;
    try {
      const memory = new GuestMemory(s.regions.map((r) => ({ gpa: r.gpa, bytes: aliasOf(r) })));
      // Only this session's mappings stay (a vhost-user front end brings new ones on each connection).
      const current = new Set(s.regions.map(keyOf));
      for (const k of [...aliases.keys()]) if (!current.has(k)) aliases.delete(k);
      pair = new NetQueuePair({
        ...spec,
        memory,
        backend: queue,
        signal: (i) => void sys.eventfdWrite(i === spec.rx.index ? fds.rxCall : fds.txCall, 1),
        onBroken: (rxError, txError) => broken(BrokenCause.Ring, rxError, txError),
      });
    } catch (e) {
      // Regions the memory accessor refuses: nothing of this session can be serviced.
      process.stderr.write(`xdpvm: queue pair ${spec.pair}: cannot service the rings: ${(e as Error).message}\n`);
      broken(BrokenCause.Memory);
    }
    const c = pair?.counters;
    const errors = pair?.errors.counts;
    const publish = (): void => {
      if (c) for (let i = 0; i < DEVICE_COUNTERS.length; i++) live[D0 + i] = past[D0 + i]! + c[DEVICE_COUNTERS[i]!];
      if (errors) for (let i = 1; i < errors.length; i++) live[E0 + i] = past[E0 + i]! + errors[i]!;
      for (let i = 0; i < BACKEND_COUNTERS.length; i++) live[B0 + i] = bc[BACKEND_COUNTERS[i]!];
      publishFrames();
    };
    if (pair) loop(s, pair, publish, broken);
    publish();
    past.set(live);
    // Where the rings stopped: a ring that never came up resumes where it was asked to start.
    const pos = (q: NetQueuePair['rxq'] | undefined, base: number | undefined, used: boolean): number =>
      q && q.size > 0 ? (used ? q.nextUsed : q.nextAvail) : (base ?? 0);
    ctl[Control.RxNextAvail] = pos(pair?.rxq, spec.rxResume?.availBase, false);
    ctl[Control.RxNextUsed] = pos(pair?.rxq, spec.rxResume?.usedBase, true);
    ctl[Control.TxNextAvail] = pos(pair?.txq, spec.txResume?.availBase, false);
    ctl[Control.TxNextUsed] = pos(pair?.txq, spec.txResume?.usedBase, true);
    Atomics.store(ctl, Control.Running, 0);
    Atomics.notify(ctl, Control.Running);
    Atomics.store(ctl, Control.Done, generation);
    Atomics.notify(ctl, Control.Done);
  };

  const loop = (s: QueuePairSession, pair: NetQueuePair, publish: () => void, broken: (cause: BrokenCause) => void): void => {
    const { fds, generation } = s;
    const epoll = Epoll.create();
    try {
      epoll.add(fds.rxKick, TAG_RX_KICK);
      if (fds.txKick !== fds.rxKick) epoll.add(fds.txKick, TAG_TX_KICK);
      epoll.add(d.wakeFd, TAG_WAKE);
      // The XSK fd joins the set only while the worker sleeps. Registered, it
      // puts the epoll on the socket's wait queue, and the kernel then runs
      // the epoll's wake-up callback (a lock with interrupts off, costly under
      // PVM) for every transmitted frame it frees: ~20% of the copy-mode
      // transmit path in perf, for a wake-up nobody waits for while busy.
      const tags = new Int32Array(8);
      pair.disarmNotifications();
      let idle = 0;
      let idleSince = 0;
      let deferMs = DEFER_MIN_MS;
      const pollMs = d.pollUs / 1000;
      const coalesceMs = d.coalesceUs / 1000;
      let rounds = 0;
      const stopAsked = (): boolean => Atomics.load(ctl, Control.Stop) >= generation;
      let stop = stopAsked();
      // Until the first frame goes out: one test per round, nothing per packet, nothing after it.
      let awaitingFirstTx = firstTx[0] === 0;
      while (!stop && !pair.broken) {
        pair.service(false);
        live[W_ROUNDS]++;
        // Copy mode sends inside a syscall: frames still on the Tx ring need another kick.
        if (queue.txUnsent() > 0) queue.txFlush();
        if (awaitingFirstTx && bc.txPackets > 0) {
          firstTx[0] = Number(process.hrtime.bigint()) / 1e6;
          awaitingFirstTx = false;
        }
        // Every 64 rounds: counters out, and a stop request in (an Atomics.load is a builtin call, not inlined).
        if ((++rounds & 63) === 0) {
          publish();
          if ((stop = stopAsked())) break;
        }
        if (pair.lastWork > 0 || pair.txBlocked) {
          idle = 0;
          if (coalesceMs > 0 && pair.lastWork < COALESCE_FRAMES && !pair.txBlocked) Atomics.wait(nap, 0, 0, coalesceMs);
          continue;
        }
        if (++idle < d.spinRounds) {
          // The time bound, looked at every 16 idle rounds (a clock read costs about a round).
          if ((idle & 15) !== 0) continue;
          const now = performance.now();
          if (idle === 16) idleSince = now;
          if (now - idleSince < pollMs) continue;
        }
        // Idle: arm kicks, close the race, sleep until a kick, a frame or a stop.
        if (pair.armNotifications()) {
          pair.disarmNotifications();
          idle = 0;
          continue;
        }
        const want = (pair.rxBlocked ? 0 : EpollEvents.In) | (pair.txBlocked ? EpollEvents.Out : 0);
        if (want !== 0) epoll.add(queue.pollFd, TAG_SOCKET, want);
        live[W_SLEEPS]++;
        publish();
        const t0 = performance.now();
        // A receive side waiting for a batch of buffers also wakes on a short
        // timeout (the driver need not post a batch), backing off while the
        // timeouts find nothing.
        const n = epoll.wait(tags, pair.rxDeferred ? deferMs : SLEEP_MS);
        if (pair.rxDeferred) {
          if (n === 0 && !pair.rxq.hasAvailable()) deferMs = deferMs * 2 < SLEEP_MS ? deferMs * 2 : SLEEP_MS;
          else deferMs = DEFER_MIN_MS;
        }
        live[W_SLEPT_US] += Math.round((performance.now() - t0) * 1000);
        if (want !== 0) epoll.delete(queue.pollFd);
        if (n > 0) live[W_WAKEUPS]++;
        for (let i = 0; i < n; i++) {
          const t = tags[i]!;
          // An eventfd read returns how many kicks it absorbed.
          if (t === TAG_RX_KICK) live[W_KICKS_READ] += Math.max(0, sys.eventfdRead(fds.rxKick));
          else if (t === TAG_TX_KICK) live[W_KICKS_READ] += Math.max(0, sys.eventfdRead(fds.txKick));
          else if (t === TAG_WAKE) sys.eventfdRead(d.wakeFd);
        }
        stop = stopAsked();
        pair.disarmNotifications();
        idle = 0;
      }
    } catch (e) {
      // An fd epoll refuses (a front end's kick fd that is not pollable): stop this session, keep the worker.
      process.stderr.write(`xdpvm: queue pair ${s.spec.pair}: I/O loop stopped: ${(e as Error).message}\n`);
      broken(BrokenCause.Loop);
    } finally {
      epoll.close();
      pair.dispose();
    }
  };

  /** Persistent worker between sessions: the next session, or undefined when told to exit. */
  const nextSession = (): QueuePairSession | undefined => {
    const port = d.port!;
    for (;;) {
      const seen = Atomics.load(ctl, Control.Doorbell);
      if (Atomics.load(ctl, Control.Exit) !== 0) return undefined;
      const m = receiveMessageOnPort(port);
      if (m) return m.message as QueuePairSession;
      // Between sessions the kernel still moves frames (Rx fills, Tx completes): keep the accounting current.
      publishFrames();
      Atomics.wait(ctl, Control.Doorbell, seen, IDLE_PUBLISH_MS);
    }
  };

  publishFrames();
  let session: QueuePairSession | undefined = first;
  while (session) {
    serve(session);
    session = d.port ? nextSession() : undefined;
  }
  publishFrames();
  d.port?.close();
}

/**
 * A prestarted worker's first session, or undefined when told to exit first. The wait is short: the pair's
 * first frame waits for this, and Node 20 can lose the doorbell's notify (README, "Lost Atomics notifications").
 */
function firstSession(d: QueuePairWorkerData, ctl: Int32Array): QueuePairSession | undefined {
  for (;;) {
    const seen = Atomics.load(ctl, Control.Doorbell);
    if (Atomics.load(ctl, Control.Exit) !== 0) return undefined;
    const m = receiveMessageOnPort(d.port!);
    if (m) return m.message as QueuePairSession;
    Atomics.wait(ctl, Control.Doorbell, seen, FIRST_SESSION_RECHECK_MS);
  }
}

// Started with its data, or started early (host/prestart-threads.ts) and given it as the first message.
if (workerData) run(workerData as QueuePairWorkerData);
else parentPort!.once('message', (d: QueuePairWorkerData) => run(d));
