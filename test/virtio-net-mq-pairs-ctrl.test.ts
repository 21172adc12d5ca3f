// Multiqueue (§5.1.6.5.5): with MQ negotiated only the first queue pair is
// used until the driver sends VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET; values
// outside 1..max_virtqueue_pairs are answered VIRTIO_NET_ERR.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { NetCtrlAck, NetFeature as N, VirtioFeature as V, featureMask } from 'virtio-spec-types';
import { createNetRig, type NetRig } from '../src/test-driver';
import { frameSeq, frameTag, makeFrame } from './support/frames';

function mqRig(extra: number[] = []): NetRig {
  const rig = createNetRig({ pairs: 2 });
  const r = rig.driver.bringUp({ features: featureMask(N.CTRL_VQ, N.MQ, V.EVENT_IDX, ...extra) });
  assert.ok(r.ok);
  return rig;
}

const batch = (n: number, tag: number): Uint8Array[] => Array.from({ length: n }, (_, i) => makeFrame(i, 64 + i, tag));

test('with MQ the control queue is queue 2N and both pairs are set up, but only pair 0 runs', () => {
  const rig = mqRig();
  assert.is(rig.driver.ctrlQueueIndex, 4);
  assert.is(rig.device.activeQueuePairs, 1);
  assert.is(rig.driver.send(batch(8, 0), { pair: 0 }), 8);
  assert.is(rig.driver.receiveAtLeast(8, 0).length, 8);
  rig.driver.send(batch(8, 1), { pair: 1 });
  rig.driver.poll();
  assert.is(rig.loopbacks[1]!.txFrames, 0, 'pair 1 is not serviced before VQ_PAIRS_SET');
  assert.is(rig.driver.receive(1).length, 0);
  assert.is(rig.loopbacks[0]!.txFrames, 8, 'pair 1 frames did not leak into pair 0');
});

test('after VQ_PAIRS_SET 2 the waiting frames on pair 1 go out on backend 1 and come back on pair 1', () => {
  const rig = mqRig();
  const sent = batch(20, 1);
  rig.driver.send(sent, { pair: 1 });
  assert.is(rig.driver.setQueuePairs(2), NetCtrlAck.OK);
  assert.is(rig.device.activeQueuePairs, 2);
  rig.driver.poll();
  const got = rig.driver.receiveAtLeast(20, 1);
  assert.is(got.length, 20);
  got.forEach((g, i) => {
    assert.is(frameSeq(g.frame), i);
    assert.is(frameTag(g.frame), 1);
  });
  assert.is(rig.loopbacks[1]!.txFrames, 20);
  assert.is(rig.loopbacks[0]!.txFrames, 0);
  assert.is(rig.driver.receive(0).length, 0);
  // New traffic on pair 1 is serviced by its own kicks now.
  rig.driver.send(batch(5, 2), { pair: 1 });
  assert.is(rig.driver.receiveAtLeast(5, 1).length, 5);
  assert.ok(rig.driver.queueInterrupts(2) > 0, 'pair 1 receive queue interrupts on its own vector');
});

test('VQ_PAIRS_SET 0 and 3 (> max_virtqueue_pairs) are answered ERR and change nothing; 1 stops pair 1 again', () => {
  const rig = mqRig();
  assert.is(rig.driver.setQueuePairs(0), NetCtrlAck.ERR);
  assert.is(rig.driver.setQueuePairs(3), NetCtrlAck.ERR);
  assert.is(rig.driver.setQueuePairs(0x8000), NetCtrlAck.ERR);
  assert.is(rig.device.activeQueuePairs, 1);
  assert.is(rig.driver.setQueuePairs(2), NetCtrlAck.OK);
  assert.is(rig.driver.setQueuePairs(3), NetCtrlAck.ERR);
  assert.is(rig.device.activeQueuePairs, 2);
  assert.is(rig.driver.setQueuePairs(1), NetCtrlAck.OK);
  rig.driver.send(batch(4, 3), { pair: 1 });
  rig.driver.poll();
  assert.is(rig.loopbacks[1]!.txFrames, 0);
  assert.is(rig.vpci.deviceErrors, 0);
  assert.not.ok(rig.driver.needsReset);
});

test('VQ_PAIRS_SET 2, 1, 2: pair 1 stops while off and resumes its rings where they stopped (nothing lost, nothing twice)', async () => {
  const rig = mqRig();
  assert.is(rig.driver.setQueuePairs(2), NetCtrlAck.OK);
  rig.driver.send(batch(6, 1), { pair: 1 });
  assert.is(rig.driver.receiveAtLeast(6, 1).length, 6);
  assert.is(rig.driver.setQueuePairs(1), NetCtrlAck.OK);
  await new Promise((r) => setImmediate(r));
  const off = batch(5, 2);
  rig.driver.send(off, { pair: 1 });
  rig.driver.poll();
  assert.is(rig.loopbacks[1]!.txFrames, 6, 'nothing serviced on pair 1 while VQ_PAIRS_SET leaves it off');
  assert.is(rig.driver.setQueuePairs(2), NetCtrlAck.OK);
  await new Promise((r) => setImmediate(r));
  rig.driver.poll();
  const got = rig.driver.receiveAtLeast(5, 1);
  assert.equal(got.map((g) => [frameTag(g.frame), frameSeq(g.frame)]), off.map((_, i) => [2, i]), 'the frames queued while off, once each, in order');
  assert.is(rig.loopbacks[1]!.txFrames, 11);
  assert.is(rig.vpci.deviceErrors, 0);
  assert.not.ok(rig.driver.needsReset);
});

test('without MQ negotiated the control queue is queue 2 and VQ_PAIRS_SET is ERR', () => {
  const rig = createNetRig({ pairs: 2 });
  assert.ok(rig.driver.bringUp({ features: featureMask(N.CTRL_VQ) }).ok);
  assert.is(rig.driver.ctrlQueueIndex, 2);
  assert.is(rig.driver.txQueues.length, 1);
  assert.is(rig.driver.setQueuePairs(1), NetCtrlAck.ERR);
  assert.is(rig.driver.send(batch(3, 0)), 3);
  assert.is(rig.driver.receiveAtLeast(3).length, 3);
});

test.run();
