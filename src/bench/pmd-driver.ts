// The poll-mode driver that stands in for the PMD guest (guest-images/pmd) in
// `bench device --threads`: one queue pair's split rings and buffers, and the
// round the PMD runs on them: transmitted buffers back to the free list, up to
// a burst of received frames (counted and given back, or for io-fwd sent back
// in place with the MACs swapped), a burst of frames to send (txonly), and a
// kick only where the device asks for one (§2.7.10). Used-buffer
// notifications are off: the PMD without irq=. Rings and buffers are the test
// driver's (DriverQueue + SplitBufferRing); per-frame work is typed-array
// accesses on guest RAM, counts kept in locals for the burst.
import { NetHdr } from 'virtio-spec-types';
import { DriverQueue, type GuestRam, SplitBufferRing } from '../test-driver';
import type { Kicks } from './per-million';
import { udpFrame } from './udp-frame';

export type PmdDriverMode = 'txonly' | 'rxonly' | 'io-fwd';

/** Bytes of every buffer (one frame and its header each). */
export const PMD_BUFFER_SIZE = 2048;
// Module constants: the package's exports are getters.
const HDR = NetHdr.SIZE;
const ETH_HLEN = 14;
const BUF = PMD_BUFFER_SIZE;

/** What the driver counts of one pair. */
export interface PmdDriverCounts {
  txUsed: number;
  rxUsed: number;
  forwarded: number;
  fwdDropped: number;
}

export interface PmdDriverOptions {
  mode: PmdDriverMode;
  /** Entries of each virtqueue. */
  size: number;
  /** Frames a round takes or sends at most (the PMD's burst=). */
  burst: number;
  /** Frame bytes a txonly frame has (the header comes on top). */
  frameSize: number;
  eventIdx: boolean;
  /** The queue's notification (a kick): 0 receive, 1 transmit. */
  notify: (index: number) => void;
}

export class PmdDriverPair implements PmdDriverCounts {
  readonly rxq: DriverQueue;
  readonly txq: DriverQueue;
  readonly rx: SplitBufferRing;
  readonly tx: SplitBufferRing;
  txUsed = 0;
  rxUsed = 0;
  forwarded = 0;
  fwdDropped = 0;
  /** Free transmit buffers: a stack, top entries [0, top). */
  private readonly freeTx: Uint16Array;
  private top = 0;
  private readonly words16: Uint16Array;
  private readonly words32: Uint32Array;
  private readonly bytes: Uint8Array;
  private readonly frame: Uint8Array;
  private readonly forward: boolean;
  private readonly transmit: boolean;
  private readonly burst: number;

  constructor(ram: GuestRam, o: PmdDriverOptions) {
    const { size, eventIdx } = o;
    this.freeTx = new Uint16Array(size);
    this.rxq = new DriverQueue({ index: 0, size, kind: 'split', eventIdx, ram, notify: () => o.notify(0) });
    this.txq = new DriverQueue({ index: 1, size, kind: 'split', eventIdx, ram, notify: () => o.notify(1) });
    this.rxq.setInterrupts(false);
    this.txq.setInterrupts(false);
    this.rx = new SplitBufferRing(this.rxq, ram, BUF, true);
    this.tx = new SplitBufferRing(this.txq, ram, BUF, false);
    for (let i = size - 1; i >= 0; i--) this.freeTx[this.top++] = i;
    const bytes = ram.bytes;
    this.bytes = bytes;
    this.words16 = new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >>> 1);
    this.words32 = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >>> 2);
    this.frame = new Uint8Array(HDR + o.frameSize);
    this.frame.set(udpFrame(o.frameSize), HDR);
    this.forward = o.mode === 'io-fwd';
    this.transmit = o.mode === 'txonly';
    this.burst = o.burst;
  }

  /** Receive modes: every receive buffer offered, and published. */
  start(): void {
    if (this.transmit) return;
    for (let i = 0; i < this.rx.size; i++) this.rx.offer(i, BUF);
    this.rx.kick();
  }

  get kicks(): Kicks {
    return { tx: this.txq.kicks, rx: this.rxq.kicks };
  }

  snapshot(): PmdDriverCounts {
    return { txUsed: this.txUsed, rxUsed: this.rxUsed, forwarded: this.forwarded, fwdDropped: this.fwdDropped };
  }

  /** What this pair counted since `then` (a snapshot). */
  since(then: PmdDriverCounts): PmdDriverCounts {
    return { txUsed: this.txUsed - then.txUsed, rxUsed: this.rxUsed - then.rxUsed, forwarded: this.forwarded - then.forwarded, fwdDropped: this.fwdDropped - then.fwdDropped };
  }

  /** One round of the PMD on this pair. Returns the frames it handled (sent, received or forwarded). */
  round(): number {
    const { rx, tx, freeTx } = this;
    // Transmitted buffers come back to the free list.
    let n = tx.pollUsed();
    let top = this.top;
    if (n > 0) {
      const ids = tx.usedIds;
      for (let k = 0; k < n; k++) freeTx[top++] = ids[k]!;
      this.txUsed += n;
    }
    let work = 0;
    n = rx.pollUsed(this.burst);
    if (n > 0) {
      const ids = rx.usedIds;
      const lens = rx.usedLens;
      const { words16, words32, forward } = this;
      let sent = 0;
      let dropped = 0;
      for (let k = 0; k < n; k++) {
        const id = ids[k]!;
        const len = lens[k]!;
        if (forward && len >= HDR + ETH_HLEN && len <= BUF) {
          if (top > 0) {
            // The PMD hands the receive buffer itself to TX, and a free transmit buffer takes its place on the
            // receive ring; the MACs are swapped in place.
            const t = freeTx[--top]!;
            // In 16-bit words (buffers are 64-aligned, the frame 12 bytes in: words w+6..w+8 the destination,
            // w+9..w+11 the source); RAM is far below 2^31 bytes, so the offset is an int32.
            const w = (rx.bufferOffset(id) | 0) >>> 1;
            const d0 = words16[w + 6]!;
            const d1 = words16[w + 7]!;
            const d2 = words16[w + 8]!;
            words16[w + 6] = words16[w + 9]!;
            words16[w + 7] = words16[w + 10]!;
            words16[w + 8] = words16[w + 11]!;
            words16[w + 9] = d0;
            words16[w + 10] = d1;
            words16[w + 11] = d2;
            // §5.1.6.2: a plain frame, flags 0 and gso_type NONE; num_buffers is 0 on transmit.
            const h = w >>> 1;
            words32[h] = 0;
            words32[h + 1] = 0;
            words32[h + 2] = 0;
            rx.swapBuffers(id, tx, t);
            tx.offer(t, len);
            sent++;
          } else dropped++;
        }
        rx.offer(id, BUF);
      }
      this.rxUsed += n;
      this.forwarded += sent;
      this.fwdDropped += dropped;
      work = forward ? sent : n;
    }
    if (this.transmit) {
      const k = this.burst < top ? this.burst : top;
      const { bytes, frame } = this;
      for (let i = 0; i < k; i++) {
        const t = freeTx[--top]!;
        bytes.set(frame, tx.bufferOffset(t));
        tx.offer(t, frame.length);
      }
      work = k;
    }
    this.top = top;
    tx.kick();
    rx.kick();
    return work;
  }
}
