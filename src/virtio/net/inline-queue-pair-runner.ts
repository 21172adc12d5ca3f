// The inline runner: queue pairs serviced in the device's own thread, each
// against its backend queue, when the transport kicks a pair or the front end
// polls (the in-process test driver and benches). The device drives it as it
// drives the worker runner, so both paths start, stop and suspend alike.
import type { NetBackendQueue } from '../../backend/net-backend';
import { NetQueuePair } from './queue-pair';
import type { PairResume, QueuePairContext, QueuePairRunner, QueuePairSpec } from './queue-pair-runner';

/** Rounds of service per kick before yielding (the next kick or poll continues). */
const MAX_ROUNDS_PER_KICK = 64;

export class InlineQueuePairRunner implements QueuePairRunner {
  readonly pairs: number;
  private running: (NetQueuePair | undefined)[] = [];

  constructor(private readonly backends: readonly NetBackendQueue[]) {
    this.pairs = backends.length;
  }

  start(spec: QueuePairSpec, ctx: QueuePairContext): void {
    if (spec.pair < 0 || spec.pair >= this.pairs) throw new RangeError(`queue pair ${spec.pair} out of range`);
    this.running[spec.pair]?.dispose();
    this.running[spec.pair] = new NetQueuePair({
      ...spec,
      memory: ctx.memory,
      backend: this.backends[spec.pair]!,
      signal: (i) => ctx.signalUsed(i),
      onBroken: () => ctx.markNeedsReset(),
    });
  }

  kick(pair: number): void {
    const p = this.running[pair];
    if (!p) return;
    for (let round = 0; round < MAX_ROUNDS_PER_KICK && p.service(); round++);
  }

  /** Services every running pair whose backend may have work (frames to receive, room to send). */
  poll(): void {
    for (let p = 0; p < this.running.length; p++) this.kick(p);
  }

  suspend(pair: number): Promise<PairResume | undefined> {
    const p = this.running[pair];
    if (!p) return Promise.resolve(undefined);
    this.running[pair] = undefined;
    p.dispose();
    return Promise.resolve({
      rx: { availBase: p.rxq.nextAvail, usedBase: p.rxq.nextUsed },
      tx: { availBase: p.txq.nextAvail, usedBase: p.txq.nextUsed },
    });
  }

  stopAll(): void {
    for (const p of this.running) p?.dispose();
    this.running = [];
    // Guest buffers the kernel still holds must be out of its reach before the guest reuses them.
    for (const b of this.backends) b.guestUmem?.reset();
  }

  /** The running pairs, by index (for counters). */
  queuePairs(): readonly (NetQueuePair | undefined)[] {
    return this.running;
  }
}
