// Receive backpressure (§5.1.6.3): with no receive buffers posted, frames
// stay in the backend (none lost, none half-delivered); once the driver
// posts buffers and notifies, all of them arrive in order.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VirtioFeature as V, featureMask } from 'virtio-spec-types';
import { createNetRig } from '../src/test-driver';
import { frameSeq, makeFrame } from './support/frames';

for (const [name, features] of [
  ['split', 0n],
  ['split + EVENT_IDX', featureMask(V.EVENT_IDX)],
  ['packed + EVENT_IDX', featureMask(V.RING_PACKED, V.EVENT_IDX)],
] as const) {
  test(`${name}: 200 frames wait in the backend without buffers and all arrive once buffers are posted`, () => {
    const rig = createNetRig();
    const { driver } = rig;
    assert.ok(driver.bringUp({ features, rx: false }).ok);
    const sent = Array.from({ length: 200 }, (_, i) => makeFrame(i, 60 + i * 7));
    assert.is(driver.send(sent), 200);
    driver.poll();
    const lb = rig.loopbacks[0]!;
    const c = rig.device.queuePairs()[0]!.counters;
    assert.is(c.txFrames, 200, 'transmit is not held up by receive');
    assert.is(lb.rxPeek(1000), 200, 'every frame still in the backend');
    assert.is(c.rxFrames, 0);
    assert.ok(c.rxNoBuffers > 0);
    assert.ok(rig.device.queuePairs()[0]!.rxBlocked);
    assert.is(driver.receive().length, 0);

    const rx = driver.rx();
    rx.post(50);
    rx.kick(); // the notification is what wakes the device (no poll)
    const first = driver.receive(0, false); // no repost: exactly 50 buffers were offered
    assert.is(first.length, 50);
    assert.is(lb.rxPeek(1000), 150);
    rx.post(256);
    rx.kick();
    const rest = driver.receiveAtLeast(150);
    const all = [...first, ...rest];
    assert.is(all.length, 200);
    all.forEach((g, i) => {
      assert.is(frameSeq(g.frame), i);
      assert.equal(g.frame, sent[i]);
    });
    assert.is(lb.accounted(), lb.slots, 'every loopback slot back');
    assert.is(c.rxDropTooSmall, 0);
  });
}

test.run();
