// Mergeable receive buffers (VIRTIO_NET_F_MRG_RXBUF, §5.1.6.4): a frame
// larger than one chain fills several, each chain of several descriptors;
// the first chain's header says how many (num_buffers), and the driver
// reassembles the frame from them in order.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { NetFeature as N, VirtioFeature as V, featureMask } from 'virtio-spec-types';
import { createNetRig, type NetRig } from '../src/test-driver';
import { frameSeq, makeFrame } from './support/frames';

function mrg(packed: boolean, sizes: number[], indirect = false, count?: number): NetRig {
  const rig = createNetRig();
  const r = rig.driver.bringUp({
    features: featureMask(N.MRG_RXBUF, V.EVENT_IDX, ...(packed ? [V.RING_PACKED] : []), ...(indirect ? [V.INDIRECT_DESC] : [])),
    rx: { sizes, indirect, ...(count !== undefined ? { count } : {}) },
  });
  assert.ok(r.ok);
  return rig;
}

for (const packed of [false, true]) {
  const ring = packed ? 'packed' : 'split';

  test(`${ring}: a 1514-byte frame in 256-byte chains of two 128-byte descriptors: num_buffers 6`, () => {
    const rig = mrg(packed, [128, 128]);
    const f = makeFrame(7, 1514);
    rig.driver.send(f);
    const [g, ...rest] = rig.driver.receiveAtLeast(1);
    assert.is(rest.length, 0);
    assert.is(g!.header.numBuffers, 6);
    assert.equal(g!.lens, [256, 256, 256, 256, 256, 1526 - 5 * 256]);
    assert.is(new Set(g!.ids).size, 6);
    assert.equal(g!.frame, f);
    assert.equal(rig.driver.rx().problems, []);
  });

  test(`${ring}: frames of mixed sizes each take ceil((12 + len) / 256) chains, in order, intact`, () => {
    const rig = mrg(packed, [100, 156]);
    const sent = Array.from({ length: 300 }, (_, i) => makeFrame(i, 60 + ((i * 211) % 1455)));
    for (let i = 0; i < sent.length; i += 20) {
      const chunk = sent.slice(i, i + 20);
      rig.driver.send(chunk);
      const got = rig.driver.receiveAtLeast(chunk.length);
      assert.is(got.length, chunk.length);
      got.forEach((g, k) => {
        assert.is(frameSeq(g.frame), i + k);
        assert.equal(g.frame, chunk[k]);
        assert.is(g.header.numBuffers, Math.ceil((12 + chunk[k]!.length) / 256));
      });
    }
    assert.equal(rig.driver.rx().problems, []);
  });

  test(`${ring}: indirect chains [64, 64, 128] also merge`, () => {
    const rig = mrg(packed, [64, 64, 128], true);
    const f = makeFrame(3, 1500);
    rig.driver.send(f);
    const [g] = rig.driver.receiveAtLeast(1);
    assert.is(g!.header.numBuffers, Math.ceil(1512 / 256));
    assert.equal(g!.frame, f);
  });

  test(`${ring}: too few chains for a frame: it waits in the backend (nothing half-written) until more are posted`, () => {
    const rig = mrg(packed, [256], false, 3);
    const f = makeFrame(9, 1514);
    rig.driver.send(f);
    assert.is(rig.driver.receive().length, 0);
    assert.is(rig.loopbacks[0]!.rxPeek(10), 1, 'still in the backend');
    assert.ok(rig.device.queuePairs()[0]!.counters.rxNoBuffers > 0);
    assert.is(rig.driver.rx().queue.pollUsed().length, 0, 'no chain was used');
    rig.driver.rx().post(3, { sizes: [256] });
    rig.driver.rx().kick();
    const [g] = rig.driver.receiveAtLeast(1);
    assert.is(g!.header.numBuffers, 6);
    assert.equal(g!.frame, f);
  });
}

test('a frame needing more chains than the device takes per frame (16-byte buffers) is dropped, not wedging the queue', () => {
  // §5.1.6.3.1: with MRG_RXBUF a buffer need only hold the header; 1514 bytes would take 96 of them.
  const rig = mrg(false, [16]);
  const big = makeFrame(1, 1514);
  const small = makeFrame(2, 60);
  rig.driver.send([big, small]);
  const got = rig.driver.receiveAtLeast(1);
  assert.is(got.length, 1);
  assert.equal(got[0]!.frame, small);
  assert.is(got[0]!.header.numBuffers, 5);
  assert.is(rig.device.queuePairs()[0]!.counters.rxDropTooSmall, 1);
  assert.is(rig.loopbacks[0]!.rxPeek(10), 0);
  assert.equal(rig.driver.rx().problems, []);
});

test('a small frame in mergeable mode uses one chain with num_buffers 1', () => {
  const rig = mrg(false, [2048]);
  const f = makeFrame(1, 60);
  rig.driver.send(f);
  const [g] = rig.driver.receiveAtLeast(1);
  assert.is(g!.header.numBuffers, 1);
  assert.equal(g!.lens, [72]);
  assert.equal(g!.frame, f);
});

test.run();
