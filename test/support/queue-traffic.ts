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
      writeFrame(q, off, f);
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
      const f = readFrame(q, i);
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

/** Copies `f` into the frame txAcquire gave at `off`, over all its buffers when it spans several (multi-buffer). */
export function writeFrame(q: NetBackendQueue, off: number, f: Uint8Array): void {
  const seg = q.txSegmentSize ?? f.length;
  let at = off;
  for (let pos = 0; pos < f.length; pos += seg) {
    q.txBuffer.set(f.subarray(pos, Math.min(f.length, pos + seg)), at);
    if (pos + seg < f.length) at = q.txNext!(at);
  }
}

/** A copy of the i-th peeked frame, put together from its buffers when it came in several (multi-buffer). */
export function readFrame(q: NetBackendQueue, i: number): Uint8Array {
  const n = q.rxSegments?.(i) ?? 1;
  const f = new Uint8Array(q.rxLength(i));
  let pos = 0;
  for (let k = 0; k < n; k++) {
    const off = n === 1 ? q.rxOffset(i) : q.rxSegmentOffset!(i, k);
    const len = n === 1 ? f.length : q.rxSegmentLength!(i, k);
    f.set(q.rxBuffer.subarray(off, off + len), pos);
    pos += len;
  }
  if (pos !== f.length) throw new Error(`frame ${i}: its buffers hold ${pos} bytes, rxLength says ${f.length}`);
  return f;
}
