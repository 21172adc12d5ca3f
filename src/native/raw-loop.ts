// Typed view of native/raw_loop: the raw C baseline the benchmarks run
// against the TypeScript backend (the same Tx/Rx loops on an XSK that the
// TypeScript code set up). Only the benchmarks load it.
import { loadAddon } from './load';
import type { RawRing } from './xsk';

export interface RawLoopParams {
  fd: number;
  umem: ArrayBuffer;
  frameSize: number;
  /** fwd: received frames sent back in place with their MACs swapped. */
  mode: 'tx' | 'rx' | 'fwd';
  batch: number;
  seconds: number;
  packet: Uint8Array;
  rings: { fill: RawRing; completion: RawRing; rx: RawRing; tx: RawRing };
}

export interface RawLoopResult {
  packets: number;
  bytes: number;
  kicks: number;
  seconds: number;
}

export interface RawLoopAddon {
  /** Blocks the calling thread for `params.seconds`. */
  rawLoop(params: RawLoopParams): RawLoopResult;
}

export const rawLoopNative: RawLoopAddon = loadAddon<RawLoopAddon>('raw_loop');
