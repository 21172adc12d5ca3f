// An I/O thread: the only thread touching the virtqueues and backend queues
// of the queue pairs it serves (one, or several as QEMU's iothread-vq-mapping
// allows). While there is traffic it busy-polls every running pair (guest
// kicks disabled); when all are idle it arms the guests' kicks, re-checks,
// and sleeps in one epoll on every pair's kick eventfds and, for pairs that
// wait on their backend, its poll fd.
//
// Each pair's backend queue is opened once, at the pair's first session, and
// kept across sessions: an AF_XDP queue primes its Fill ring once, and every
// UMEM frame stays in exactly one place (the pool or one of the four rings)
// however often the rings restart.
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import type { NetBackendQueue } from '../backend/net-backend';
import { prepareBackendQueue, type PreparedBackendQueue } from '../backend/queue-source';
import { Epoll, EpollEvents } from '../host/epoll';
import { nameThisThread, pinThisThread, setThreadNice, setThreadTimerSlack, thisThreadId } from '../host/cpu-affinity';
import { GuestMemory } from '../memory/guest-memory';
import { sys } from '../native/sys';
import { NetQueuePair } from '../virtio/net/queue-pair';
import { AdaptivePoll } from './adaptive-poll';
import { IO_THREAD_NAME } from '../host/thread-names';
import { BACKEND_COUNTERS, BrokenCause, COUNTER_BASE, COUNTER_SLOTS, DEVICE_COUNTERS, GUEST_UMEM_COUNTERS, workerSlot } from './pair-counters';
import {
  COUNTERS_OFFSET,
  FIRST_TX_OFFSET,
  PairControl,
  ThreadControl,
  type IoThreadData,
  type IoThreadMessage,
  type IoThreadPair,
  type QueuePairSession,
  type BackendRebind,
  type SharedRegion,
} from './io-thread-protocol';

// epoll tags: 0 is the wake-up eventfd; pair i of the thread has 1 + 3i + (rx kick, tx kick, backend).
const TAG_WAKE = 0;
const KIND_RX_KICK = 0;
const KIND_TX_KICK = 1;
const KIND_BACKEND = 2;
const SLEEP_MS = 200;
/** sleepUntilEvent's results other than the time it woke. */
const SLEEP_RACED = -2;
const SLEEP_CHANGED = -1;
/** First timeout of a sleep that waits for a batch of receive buffers (NetQueuePair.rxDeferred). */
const DEFER_MIN_MS = 1;
const IDLE_PUBLISH_MS = 100;
/** A round that moved fewer than this (all pairs together) waits IoThreadData.coalesceUs before the next. */
const COALESCE_FRAMES = 16;
/** Idle rounds polled at least, whatever the time bound (a clock read costs about a round). */
const MIN_IDLE_ROUNDS = 16;
/** Timer slack of a thread that coalesces (the kernel's default is 50 µs). */
const COALESCE_TIMER_SLACK_NS = 1000;
/** What the coalescing wait sleeps on: a word nobody changes (Atomics.wait takes fractions of a ms). */
const nap = new Int32Array(new SharedArrayBuffer(4));
// Slots of the thread's own counters (pair-counters.ts), per pair, incremented in place in the shared table.
const W_ROUNDS = workerSlot('rounds');
const W_SLEEPS = workerSlot('sleeps');
const W_WAKEUPS = workerSlot('wakeups');
const W_SLEPT_US = workerSlot('sleptUs');
const W_COALESCED_US = workerSlot('coalescedUs');
const W_KICKS_READ = workerSlot('kicksRead');
const W_RX_DISCARDED = workerSlot('rxDiscarded');
const D0 = COUNTER_BASE.device;
const B0 = COUNTER_BASE.backend;
const E0 = COUNTER_BASE.queueErrors;
const G0 = COUNTER_BASE.guestUmem;

/** Views of guest memory by mapping, kept across sessions and shared by the thread's pairs. */
class GuestAliases {
  // Each alias is an ArrayBuffer V8 counts as external memory, and tens of MiB of it set off garbage collections.
  private readonly aliases = new Map<string, Uint8Array>();

  private static key(r: SharedRegion): string {
    return `${r.address}:${r.offset ?? 0}:${r.length}`;
  }

  of(r: SharedRegion): Uint8Array {
    const skip = r.offset ?? 0;
    const key = GuestAliases.key(r);
    let bytes = this.aliases.get(key);
    if (!bytes) this.aliases.set(key, (bytes = new Uint8Array(sys.alias(r.address, skip + r.length), skip, r.length)));
    return bytes;
  }

  /** Forgets the views no running session uses (a vhost-user front end brings new mappings on each connection). */
  keepOnly(inUse: readonly SharedRegion[][]): void {
    const keep = new Set(inUse.flat().map(GuestAliases.key));
    for (const k of [...this.aliases.keys()]) if (!keep.has(k)) this.aliases.delete(k);
  }
}

/** One queue pair as its thread sees it: its control block, its backend queue, its current session. */
class ServedPair {
  readonly pair: number;
  readonly ctl: Int32Array;
  readonly live: Float64Array;
  readonly firstTx: Float64Array;
  /** Device and queue-error counts of the sessions already over (each session's NetQueuePair starts from 0). */
  private readonly past = new Float64Array(COUNTER_SLOTS);
  private readonly prepared: PreparedBackendQueue;
  private backend: NetBackendQueue | undefined;
  session: QueuePairSession | undefined;
  net: NetQueuePair | undefined;
  /** The epoll tag of its first fd (see TAG_WAKE). */
  readonly tagBase: number;
  private kickFds: number[] = [];
  awaitingFirstTx: boolean;

  constructor(
    p: IoThreadPair,
    readonly index: number,
  ) {
    this.pair = p.pair;
    this.ctl = new Int32Array(p.control, 0, PairControl.Words);
    this.live = new Float64Array(p.control, COUNTERS_OFFSET, COUNTER_SLOTS);
    this.firstTx = new Float64Array(p.control, FIRST_TX_OFFSET, 1);
    this.awaitingFirstTx = this.firstTx[0] === 0;
    // The backend's mappings are made at once; the queue itself (an AF_XDP Fill ring's priming) waits for the driver.
    this.prepared = prepareBackendQueue(p.backend);
    this.tagBase = 1 + 3 * index;
  }

  get queue(): NetBackendQueue {
    return (this.backend ??= this.prepared.open());
  }

  publishFrames(): void {
    const q = this.backend;
    if (!q) return;
    const a = q.frameAccounting();
    const ctl = this.ctl;
    ctl[PairControl.FramesPool] = a.pool;
    ctl[PairControl.FramesFill] = a.fill;
    ctl[PairControl.FramesRx] = a.rx;
    ctl[PairControl.FramesTx] = a.tx;
    ctl[PairControl.FramesCompletion] = a.completion;
    ctl[PairControl.FrameCount] = q.frameCount;
  }

  /** Counters out to the shared table: the device's, the ring errors, the backend's, the frames. */
  publish(): void {
    const live = this.live;
    const past = this.past;
    const net = this.net;
    if (net) {
      const c = net.counters;
      for (let i = 0; i < DEVICE_COUNTERS.length; i++) live[D0 + i] = past[D0 + i]! + c[DEVICE_COUNTERS[i]!];
      const errors = net.errors.counts;
      for (let i = 1; i < errors.length; i++) live[E0 + i] = past[E0 + i]! + errors[i]!;
    }
    const q = this.backend;
    if (q) {
      const bc = q.counters;
      for (let i = 0; i < BACKEND_COUNTERS.length; i++) live[B0 + i] = bc[BACKEND_COUNTERS[i]!];
      const gc = this.prepared.guestUmemCounters?.();
      if (gc) for (let i = 0; i < GUEST_UMEM_COUNTERS.length; i++) live[G0 + i] = gc[GUEST_UMEM_COUNTERS[i]!];
    }
    this.publishFrames();
  }

  /** A device reset asked for and not answered yet (PairControl.ResetRequest). */
  resetAsked(): boolean {
    return Atomics.load(this.ctl, PairControl.ResetRequest) !== this.ctl[PairControl.ResetDone];
  }

  /**
   * Answers a reset (the session has ended): the backend queue forgets the guest buffers the kernel holds and
   * says whether the main thread must rebind its socket; until that rebind arrives the queue is not touched.
   */
  reset(): void {
    const ctl = this.ctl;
    const want = Atomics.load(ctl, PairControl.ResetRequest);
    ctl[PairControl.ResetRebind] = this.prepared.release?.() === true ? 1 : 0;
    this.publish();
    Atomics.store(ctl, PairControl.ResetDone, want);
    Atomics.notify(ctl, PairControl.ResetDone);
  }

  /** The socket the main thread bound in place of the one a reset released. */
  adopt(rebind: BackendRebind): void {
    this.prepared.adopt?.(rebind.rebind);
  }

  stopAsked(): boolean {
    const s = this.session;
    return s !== undefined && Atomics.load(this.ctl, PairControl.Stop) >= s.generation;
  }

  broken(cause: BrokenCause, rxError = 0, txError = 0): void {
    const ctl = this.ctl;
    ctl[PairControl.BrokenCause] = cause;
    ctl[PairControl.RxError] = rxError;
    ctl[PairControl.TxError] = txError;
    Atomics.store(ctl, PairControl.Broken, this.session?.generation ?? 0);
    Atomics.notify(ctl, PairControl.Broken);
  }

  /** Starts servicing a session; false when nothing of it can be serviced (it has then ended already). */
  begin(s: QueuePairSession, aliases: GuestAliases, epoll: Epoll): boolean {
    this.session = s;
    const ctl = this.ctl;
    const queue = this.queue;
    Atomics.store(ctl, PairControl.Running, 1);
    Atomics.notify(ctl, PairControl.Running);
    ctl[PairControl.BrokenCause] = BrokenCause.None;
    ctl[PairControl.RxError] = 0;
    ctl[PairControl.TxError] = 0;
    if (s.spec.discardPendingRx) {
      // What arrived while no ring ran belongs to nobody: drop it (and give the kernel its frames back).
      // Bounded: under a flood, newer frames are simply the new front end's.
      for (let k = 0; k < 64; k++) {
        const n = queue.rxPeek(256);
        if (n === 0) break;
        queue.rxRelease(n);
        this.live[W_RX_DISCARDED] += n;
      }
    }
    const { fds, spec } = s;
    try {
      const memory = new GuestMemory(s.regions.map((r) => ({ gpa: r.gpa, bytes: aliases.of(r) })));
      this.net = new NetQueuePair({
        ...spec,
        memory,
        backend: queue,
        signal: (i) => void sys.eventfdWrite(i === spec.rx.index ? fds.rxCall : fds.txCall, 1),
        onBroken: (rxError, txError) => this.broken(BrokenCause.Ring, rxError, txError),
      });
    } catch (e) {
      // Regions the memory accessor refuses: nothing of this session can be serviced.
      process.stderr.write(`xdpvm: queue pair ${spec.pair}: cannot service the rings: ${(e as Error).message}\n`);
      this.broken(BrokenCause.Memory);
      this.end(epoll);
      return false;
    }
    try {
      epoll.add(fds.rxKick, this.tagBase + KIND_RX_KICK);
      this.kickFds.push(fds.rxKick);
      if (fds.txKick !== fds.rxKick) {
        epoll.add(fds.txKick, this.tagBase + KIND_TX_KICK);
        this.kickFds.push(fds.txKick);
      }
    } catch (e) {
      // A front end's kick fd that epoll refuses (not pollable): stop this session, keep the thread and its other pairs.
      process.stderr.write(`xdpvm: queue pair ${spec.pair}: I/O loop stopped: ${(e as Error).message}\n`);
      this.broken(BrokenCause.Loop);
      this.end(epoll);
      return false;
    }
    this.net.disarmNotifications();
    return true;
  }

  /** Ends the current session: counters out, where the rings stopped, then Done for the main thread. */
  end(epoll: Epoll): void {
    const s = this.session!;
    for (const fd of this.kickFds) {
      try {
        epoll.delete(fd);
      } catch {
        // Closed by its owner already: the kernel dropped it from the set with its last reference.
      }
    }
    this.kickFds = [];
    const net = this.net;
    this.publish();
    this.past.set(this.live);
    net?.dispose();
    // Where the rings stopped: a ring that never came up resumes where it was asked to start.
    const pos = (q: NetQueuePair['rxq'] | undefined, base: number | undefined, used: boolean): number =>
      q && q.size > 0 ? (used ? q.nextUsed : q.nextAvail) : (base ?? 0);
    const ctl = this.ctl;
    ctl[PairControl.RxNextAvail] = pos(net?.rxq, s.spec.rxResume?.availBase, false);
    ctl[PairControl.RxNextUsed] = pos(net?.rxq, s.spec.rxResume?.usedBase, true);
    ctl[PairControl.TxNextAvail] = pos(net?.txq, s.spec.txResume?.availBase, false);
    ctl[PairControl.TxNextUsed] = pos(net?.txq, s.spec.txResume?.usedBase, true);
    this.net = undefined;
    this.session = undefined;
    Atomics.store(ctl, PairControl.Running, 0);
    Atomics.notify(ctl, PairControl.Running);
    Atomics.store(ctl, PairControl.Done, s.generation);
    Atomics.notify(ctl, PairControl.Done);
  }
}

function run(d: IoThreadData): void {
  const what = `I/O thread ${d.thread} (queue pairs ${d.pairs.map((p) => p.pair).join(', ')})`;
  nameThisThread(`${IO_THREAD_NAME}${d.thread}`);
  if (d.cpu !== undefined) pinThisThread(d.cpu, what);
  const tctl = new Int32Array(d.control, 0, ThreadControl.Words);
  const tid = thisThreadId();
  tctl[ThreadControl.Tid] = tid;
  if (d.nice !== undefined) setThreadNice(tid, d.nice, what);
  // Coalescing waits are a few tens of µs: the default 50 µs timer slack would double them.
  if (d.coalesceUs > 0 && tid > 0) setThreadTimerSlack(tid, COALESCE_TIMER_SLACK_NS, what);
  // Guest RAM mapped now, while the guest boots: a fresh alias of tens of MiB sets off garbage collections
  // (~5 ms each here), which must not fall between DRIVER_OK and the first frame.
  const aliases = new GuestAliases();
  for (const r of d.regions) aliases.of(r);
  const served = d.pairs.map((p, i) => new ServedPair(p, i));
  for (const p of served) p.ctl[PairControl.Tid] = tid;
  const byPair = new Map(served.map((p) => [p.pair, p]));
  /** The pairs with a running session, in the order they are serviced. */
  let active: ServedPair[] = [];
  const epoll = Epoll.create();
  epoll.add(d.wakeFd, TAG_WAKE);
  const tags = new Int32Array(8 + 3 * served.length);
  const poll = new AdaptivePoll(d.pollUs, d.pollGrow, d.pollShrink);
  /** Per served pair: woken by one of its fds in the last sleep; and the pairs whose backend fd joined the sleep. */
  const woke = new Uint8Array(served.length);
  const waitingOn = new Int32Array(served.length);
  const coalesceMs = d.coalesceUs / 1000;
  let doorbellSeen = -1;
  /** Set by serviceRound: a pair's transmit side waits for the backend (its Tx ring is full). */
  let roundTxBlocked = false;
  /** The timeout of a sleep that waits for receive buffers in a batch (backs off while timeouts find nothing). */
  let deferMs = DEFER_MIN_MS;

  const endSession = (p: ServedPair): void => {
    p.end(epoll);
    active = active.filter((a) => a !== p);
  };
  /** New sessions from the port (a pair still running its old one ends it first: its stop was asked before). */
  const takeSessions = (): void => {
    doorbellSeen = Atomics.load(tctl, ThreadControl.Doorbell);
    for (let m = receiveMessageOnPort(d.port); m; m = receiveMessageOnPort(d.port)) {
      const msg = m.message as IoThreadMessage;
      if ('rebind' in msg) {
        byPair.get(msg.pair)?.adopt(msg);
        continue;
      }
      const s: QueuePairSession = msg;
      const p = byPair.get(s.spec.pair);
      if (!p) continue;
      if (p.session) endSession(p);
      if (p.begin(s, aliases, epoll)) active = [...active, p];
    }
    // The regions the thread was started with stay mapped for the sessions to come (the first one's included).
    aliases.keepOnly([d.regions, ...active.map((p) => p.session!.regions)]);
  };
  const endStopped = (): void => {
    for (const p of active) if (p.stopAsked()) endSession(p);
  };
  /** Device resets: a pair's session ends first (its stop was asked before), then its queue lets go. */
  const answerResets = (): void => {
    for (const p of served) {
      if (!p.resetAsked()) continue;
      if (p.session) endSession(p);
      p.reset();
    }
  };
  /** Takes an fd out of the set if it is there (a sleep that failed half-way). */
  const forget = (fd: number): void => {
    if (fd < 0) return;
    try {
      epoll.delete(fd);
    } catch {
      // Was not in the set.
    }
  };
  const doorbellRang = (): boolean => Atomics.load(tctl, ThreadControl.Doorbell) !== doorbellSeen;

  for (const p of served) p.publishFrames();
  try {
    for (;;) {
      if (doorbellRang()) takeSessions();
      endStopped();
      answerResets();
      if (active.length === 0) {
        if (Atomics.load(tctl, ThreadControl.Exit) !== 0) break;
        // Between sessions the kernel still moves frames (Rx fills, Tx completes): keep the accounting current.
        for (const p of served) p.publishFrames();
        Atomics.wait(tctl, ThreadControl.Doorbell, doorbellSeen, IDLE_PUBLISH_MS);
        continue;
      }
      try {
        serveActive();
      } catch (e) {
        // epoll refusing a backend's fd: the sessions of this thread stop, the thread stays for the next ones.
        process.stderr.write(`xdpvm: ${what}: I/O loop stopped: ${(e as Error).message}\n`);
        for (const p of active) {
          p.broken(BrokenCause.Loop);
          endSession(p);
        }
        for (const p of served) forget(p.queue.pollFd);
      }
    }
  } finally {
    for (const p of active) p.end(epoll);
    for (const p of served) p.publishFrames();
    epoll.close();
    d.port.close();
  }

  /** The coalescing wait, counted for every pair the thread serves. */
  function coalesce(pairs: readonly ServedPair[]): void {
    const t0 = performance.now();
    Atomics.wait(nap, 0, 0, coalesceMs);
    const us = Math.round((performance.now() - t0) * 1000);
    for (let i = 0; i < pairs.length; i++) pairs[i]!.live[W_COALESCED_US] += us;
  }

  /**
   * One service round over the running pairs: the frames it moved, or -1 when a ring broke a rule (its session
   * ended; the main thread resets the device). Its own function, as is the sleep: a loop that inlines them all is
   * optimised only on-stack, and V8 compiled that one for ~65 ms on a platform thread, on the vCPU's CPU.
   */
  function serviceRound(pairs: readonly ServedPair[], n: number): number {
    let work = 0;
    roundTxBlocked = false;
    for (let i = 0; i < n; i++) {
      const p = pairs[i]!;
      const net = p.net!;
      net.service(false);
      p.live[W_ROUNDS]++;
      if (net.broken) {
        endSession(p);
        return -1;
      }
      const q = p.queue;
      // Copy mode sends inside a syscall: frames still on the Tx ring need another kick.
      if (q.txUnsent() > 0) q.txFlush();
      if (p.awaitingFirstTx && q.counters.txPackets > 0) {
        p.firstTx[0] = Number(process.hrtime.bigint()) / 1e6;
        p.awaitingFirstTx = false;
      }
      work += net.lastWork;
      if (net.txBlocked) roundTxBlocked = true;
    }
    return work;
  }

  /**
   * Idle: arms kicks, closes the race, sleeps until a kick, a frame, a stop or a new session. Returns when it woke
   * (performance.now()), SLEEP_RACED when work came in while arming (no sleep), SLEEP_CHANGED when the set of
   * sessions changed.
   */
  function sleepUntilEvent(pairs: readonly ServedPair[], n: number): number {
    let raced = false;
    for (let i = 0; i < n; i++) if (pairs[i]!.net!.armNotifications()) raced = true;
    if (raced) {
      for (let i = 0; i < n; i++) pairs[i]!.net!.disarmNotifications();
      return SLEEP_RACED;
    }
    let deferred = false;
    let rxStarved = false;
    let waiting = 0;
    for (let i = 0; i < n; i++) {
      const p = pairs[i]!;
      const net = p.net!;
      if (net.rxDeferred) deferred = true;
      if (net.rxBlocked) rxStarved = true;
      const want = (net.rxBlocked ? 0 : EpollEvents.In) | (net.txBlocked ? EpollEvents.Out : 0);
      if (p.queue.pollFd >= 0 && want !== 0) {
        epoll.add(p.queue.pollFd, p.tagBase + KIND_BACKEND, want);
        waitingOn[waiting++] = p.index;
      }
      p.live[W_SLEEPS]++;
      p.publish();
    }
    const t0 = performance.now();
    // A receive side waiting for a batch of buffers also wakes on a short
    // timeout (the driver need not post a batch), backing off while the
    // timeouts find nothing.
    const got = epoll.wait(tags, deferred ? deferMs : SLEEP_MS);
    const t1 = performance.now();
    if (deferred) {
      if (got === 0 && !pairs.some((p) => p.net!.rxq.hasAvailable())) deferMs = deferMs * 2 < SLEEP_MS ? deferMs * 2 : SLEEP_MS;
      else deferMs = DEFER_MIN_MS;
    }
    for (let w = 0; w < waiting; w++) epoll.delete(served[waitingOn[w]!]!.queue.pollFd);
    let txKicked = false;
    let rxKicked = false;
    for (let i = 0; i < got; i++) {
      const t = tags[i]!;
      if (t === TAG_WAKE) {
        sys.eventfdRead(d.wakeFd);
        continue;
      }
      const p = served[((t - 1) / 3) | 0];
      const s = p?.session;
      if (!p || !s) continue;
      const kind = (t - 1) % 3;
      // An eventfd read returns how many kicks it absorbed.
      if (kind === KIND_RX_KICK) {
        p.live[W_KICKS_READ] += Math.max(0, sys.eventfdRead(s.fds.rxKick));
        rxKicked = true;
      } else if (kind === KIND_TX_KICK) {
        p.live[W_KICKS_READ] += Math.max(0, sys.eventfdRead(s.fds.txKick));
        txKicked = true;
      }
      woke[p.index] = 1;
    }
    const sleptUs = Math.round((t1 - t0) * 1000);
    for (let i = 0; i < n; i++) {
      const p = pairs[i]!;
      p.live[W_SLEPT_US] += sleptUs;
      if (woke[p.index] === 1) {
        p.live[W_WAKEUPS]++;
        woke[p.index] = 0;
      }
      p.net!.disarmNotifications();
    }
    if (changed(pairs)) return SLEEP_CHANGED;
    // Woken by a transmit kick, with coalescing on (a CPU shared with the
    // vCPU): yield the CPU for the coalescing time, kicks still off, so the
    // driver goes on filling its rings and this wake-up serves a batch, not
    // the one burst that kicked (QEMU's virtio-net tx=timer does the same).
    // The same for the kick of a driver handing back receive buffers the
    // device ran out of: served at once, the first burst is taken, the
    // device is out again and the next burst kicks again; a driver without
    // EVENT_IDX cannot be asked to wait for a batch (§2.7.10), so this is
    // the only batching it gets. Frames from the backend are served at
    // once: delaying them only fills the socket's Rx ring, where the kernel
    // drops.
    if (coalesceMs > 0 && (txKicked || (rxKicked && rxStarved))) coalesce(pairs);
    return t1;
  }

  /** A new session or a stop asked for (the loop returns to take it). */
  function changed(pairs: readonly ServedPair[]): boolean {
    return doorbellRang() || pairs.some((p) => p.stopAsked());
  }

  /** Services the running pairs until the set changes (a new session, a stop, a ring that broke). */
  function serveActive(): void {
    const pairs = active;
    const n = pairs.length;
    let idle = 0;
    let idleSince = 0;
    let rounds = 0;
    deferMs = DEFER_MIN_MS;
    /** Idle since the last round with work, with a poll bound to nap through (a CPU shared with the vCPU). */
    let napping = false;
    for (;;) {
      const work = serviceRound(pairs, n);
      if (work < 0) return;
      const txBlocked = roundTxBlocked;
      // Every 64 rounds: counters out, and stops and new sessions in (an Atomics.load is a builtin call, not inlined).
      if ((++rounds & 63) === 0) {
        for (let i = 0; i < n; i++) pairs[i]!.publish();
        if (changed(pairs)) return;
      }
      if (work > 0 || txBlocked) {
        if (idle >= (coalesceMs > 0 ? 1 : MIN_IDLE_ROUNDS)) poll.idleEnded((performance.now() - idleSince) * 1000);
        idle = 0;
        napping = coalesceMs > 0 && poll.maxUs > 0;
        if (coalesceMs > 0 && work < COALESCE_FRAMES && !txBlocked) coalesce(pairs);
        continue;
      }
      if (coalesceMs > 0) {
        // A CPU shared with the vCPU: spinning would keep the guest off it, so
        // after traffic the whole poll bound (poll-max-ns; not adapted: a nap
        // costs only a timed futex wait) is spent in coalescing naps with
        // notifications off. Arming them at once would make the guest's next
        // burst a kick, an exit (bench pmd io-fwd: 6-8k kicks per million
        // frames, ~70 with the naps). A sleep that timed out starts no naps.
        if (napping) {
          const now = performance.now();
          if (++idle === 1) idleSince = now;
          if ((now - idleSince) * 1000 < poll.maxUs) {
            coalesce(pairs);
            continue;
          }
          napping = false;
        }
      } else if (++idle < d.spinRounds) {
        // The time bound, looked at every 16 idle rounds.
        if ((idle & (MIN_IDLE_ROUNDS - 1)) !== 0) continue;
        const now = performance.now();
        if (idle === MIN_IDLE_ROUNDS) idleSince = now;
        if ((now - idleSince) * 1000 < poll.us) continue;
      }
      if (idle < MIN_IDLE_ROUNDS) idleSince = performance.now();
      const woken = sleepUntilEvent(pairs, n);
      if (woken === SLEEP_CHANGED) return;
      // The idle spell, from its first idle rounds to the event (or timeout) that ended it.
      if (woken !== SLEEP_RACED) poll.idleEnded((woken - idleSince) * 1000);
      idle = 0;
    }
  }
}

// Started with its data, or started early (host/prestart-threads.ts) and given it as the first message.
if (workerData) run(workerData as IoThreadData);
else parentPort!.once('message', (d: IoThreadData) => run(d));
