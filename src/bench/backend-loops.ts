// The TypeScript side of the backend benchmark: the same TX and RX loops as
// the raw C baseline (native/xsk/raw_loop.cc), through AfXdpQueue.
import { performance } from 'node:perf_hooks';
import type { AfXdpQueue } from '../backend/af-xdp/af-xdp-queue';

export interface LoopResult {
  packets: number;
  bytes: number;
  kicks: number;
  seconds: number;
}

const CLOCK_EVERY = 256; // batches between clock reads

/** Sends copies of `packet` in batches for `seconds`; packets are completions. */
export function txLoop(q: AfXdpQueue, packet: Uint8Array, batch: number, seconds: number): LoopResult {
  const len = packet.length;
  const buf = q.txBuffer;
  const start = performance.now();
  const deadline = start + seconds * 1000;
  const c = q.counters;
  const completions0 = c.txCompletions;
  for (let iter = 1; ; iter++) {
    if (iter % CLOCK_EVERY === 0 && performance.now() >= deadline) break;
    for (let i = 0; i < batch; i++) {
      const off = q.txAcquire(len);
      if (off < 0) break;
      buf.set(packet, off);
      q.txCommit(off, len);
    }
    q.txFlush();
  }
  const seconds_ = (performance.now() - start) / 1000;
  const packets = c.txCompletions - completions0;
  return { packets, bytes: packets * len, kicks: c.txKicks, seconds: seconds_ };
}

/** Receives in batches for `seconds`, copying each frame out as a consumer would. */
export function rxLoop(q: AfXdpQueue, batch: number, seconds: number): LoopResult {
  const sink = new Uint8Array(q.maxFrameSize);
  const buf = q.rxBuffer;
  const start = performance.now();
  const deadline = start + seconds * 1000;
  const c = q.counters;
  const p0 = c.rxPackets;
  const b0 = c.rxBytes;
  for (let iter = 1; ; iter++) {
    if (iter % CLOCK_EVERY === 0 && performance.now() >= deadline) break;
    const n = q.rxPeek(batch);
    for (let i = 0; i < n; i++) {
      const off = q.rxOffset(i);
      sink.set(buf.subarray(off, off + q.rxLength(i)));
    }
    q.rxRelease(n);
  }
  return { packets: c.rxPackets - p0, bytes: c.rxBytes - b0, kicks: c.rxKicks, seconds: (performance.now() - start) / 1000 };
}
