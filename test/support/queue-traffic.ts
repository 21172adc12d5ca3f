// Moving test frames through NetBackendQueues the way a device does.
import { setTimeout as sleep } from 'node:timers/promises';
import { TX_BUSY, TX_OVERSIZE, type NetBackendQueue } from '../../src/backend/net-backend';

export { sleep };

/** Sends all frames, waiting out backpressure. Returns how many were dropped as oversize. */
export async function sendAll(q: NetBackendQueue, frames: readonly Uint8Array[], timeoutMs = 5000): Promise<number> {
  let dropped = 0;
  let i = 0;
  const deadline = Date.now() + timeoutMs;
  while (i < frames.length) {
    const f = frames[i]!;
    const off = q.txAcquire(f.length);
    if (off === TX_BUSY) {
      q.txFlush();
      if (Date.now() > deadline) throw new Error(`sendAll: stuck at frame ${i} of ${frames.length}`);
      await sleep(1);
      continue;
    }
    if (off === TX_OVERSIZE) dropped++;
    else {
      q.txBuffer.set(f, off);
      q.txCommit(off, f.length);
    }
    i++;
    if (i % 64 === 0) q.txFlush();
  }
  q.txFlush();
  return dropped;
}

/** Receives until `count` frames matched `accept` or the time runs out; returns copies. */
export async function receive(
  q: NetBackendQueue,
  count: number,
  timeoutMs = 5000,
  accept: (f: Uint8Array) => boolean = () => true,
): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  const deadline = Date.now() + timeoutMs;
  while (out.length < count && Date.now() < deadline) {
    const n = q.rxPeek(64);
    for (let i = 0; i < n; i++) {
      const off = q.rxOffset(i);
      const f = q.rxBuffer.slice(off, off + q.rxLength(i));
      if (accept(f)) out.push(f);
    }
    q.rxRelease(n);
    if (n === 0) await sleep(1);
  }
  return out;
}

/** Flushes Tx until the kernel has completed everything (so frame accounting is exact). */
export async function drainTx(q: NetBackendQueue, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    q.txFlush();
    await sleep(2);
    q.txFlush();
    const probe = q as unknown as { frameAccounting?: () => { tx: number; completion: number } };
    const acc = probe.frameAccounting?.();
    if (!acc || (acc.tx === 0 && acc.completion === 0)) return;
  }
}
