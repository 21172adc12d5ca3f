// Where the bytes of one outgoing frame go in the backend's Tx buffer. A
// frame no larger than one Tx buffer is contiguous at the offset txAcquire
// returned; a larger one (multi-buffer backends) spans several buffers of
// txSegmentSize bytes, linked by txNext (NetBackendQueue). The TX path and
// the TSO segmenter copy and store through this, so the common single-buffer
// frame costs one comparison.
import type { NetBackendQueue } from '../../backend/net-backend';
import type { BatchCopies, ChainCursor } from '../queue';

export class TxFrameLayout {
  /** Bytes of one Tx buffer (a backend without multi-buffer: every frame fits one). */
  readonly segment: number;

  constructor(private readonly be: NetBackendQueue) {
    this.segment = be.txSegmentSize ?? Number.MAX_SAFE_INTEGER;
  }

  /** Queues the copy of the next `len` bytes at `cur` into bytes [at, at + len) of the frame acquired at `off`. */
  gather(cur: ChainCursor, copies: BatchCopies, off: number, at: number, len: number): void {
    const seg = this.segment;
    if (at + len <= seg) {
      cur.gatherBatched(copies, off + at, len);
      return;
    }
    let buf = off;
    while (at >= seg) {
      buf = this.be.txNext!(buf);
      at -= seg;
    }
    for (;;) {
      const room = seg - at;
      const n = len < room ? len : room;
      cur.gatherBatched(copies, buf + at, n);
      len -= n;
      if (len === 0) return;
      buf = this.be.txNext!(buf);
      at = 0;
    }
  }

  /** Offset in the Tx buffer of byte `pos` of the frame acquired at `off`. */
  byteAt(off: number, pos: number): number {
    const seg = this.segment;
    let buf = off;
    while (pos >= seg) {
      buf = this.be.txNext!(buf);
      pos -= seg;
    }
    return buf + pos;
  }
}
