// On the copy path a transmit chain's buffer is the guest's again once its
// bytes are copied into the backend's frame: the device publishes the used
// entries (§2.7.8) before it flushes the backend, so the driver refills its
// ring while the kernel transmits instead of after (copy-mode xmit is one
// syscall for the whole batch). The backend below reads the TX used ring's
// idx out of guest memory at the moment it is flushed.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VirtioFeature as V, featureMask } from 'virtio-spec-types';
import { LoopbackQueue } from '../src/backend/loopback/loopback-queue';
import { createNetRig } from '../src/test-driver';
import { makeFrame } from './support/frames';

class FlushWatcher extends LoopbackQueue {
  /** Frames handed over per flush, and what the driver could see used at that moment. */
  readonly flushes: Array<{ frames: number; usedIdx: number }> = [];
  usedIdx: () => number = () => -1;

  override txFlush(): void {
    const before = this.counters.txPackets;
    super.txFlush();
    const frames = this.counters.txPackets - before;
    if (frames > 0) this.flushes.push({ frames, usedIdx: this.usedIdx() });
  }
}

for (const [name, features] of [
  ['split', 0n],
  ['split + EVENT_IDX', featureMask(V.EVENT_IDX)],
] as const) {
  test(`${name}: copied transmit chains are used before the backend is flushed`, () => {
    const be = new FlushWatcher();
    const rig = createNetRig({ backends: [be] });
    const { driver, ram } = rig;
    assert.ok(driver.bringUp({ features, rx: false }).ok);
    const txq = driver.tx().queue;
    // used->idx: the u16 after the used ring's flags (§2.7.8).
    be.usedIdx = () => ram.access.readU16(txq.deviceAddr + 2);
    const frames = Array.from({ length: 40 }, (_, i) => makeFrame(i, 60 + i));
    assert.is(driver.send(frames), 40);
    driver.poll();
    let flushed = 0;
    for (const f of be.flushes) {
      flushed += f.frames;
      assert.is(f.usedIdx, flushed, `the ${flushed} chains copied so far were published before the flush`);
    }
    assert.is(flushed, 40);
    assert.is(rig.device.queuePairs()[0]!.counters.txFrames, 40);
  });
}

test.run();
