// The device takes one-descriptor buffers a burst at a time
// (Virtqueue.peekBurst) and everything else one chain at a time. Transmit
// (without offloads): a batch that mixes the two, with a runt, a frame over
// the MTU and a backend that fills up mid-burst, still leaves in ring order,
// every chain used once. Receive: frames that fit one buffer go a burst at a
// time, the header copied with the frame when the backend leaves room before
// it (NetBackendQueue.rxHeadroom) and stored apart when not; those that do
// not fit are spread over mergeable buffers or dropped, in order.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { NetFeature as N, featureMask } from 'virtio-spec-types';
import { LoopbackQueue } from '../src/backend/loopback/loopback-queue';
import { createNetRig, type ReceivedFrame } from '../src/test-driver';
import { frameSeq, makeFrame } from './support/frames';

test('one-descriptor frames, chains, indirect chains and drops in one batch leave in ring order', () => {
  const rig = createNetRig();
  const { driver } = rig;
  assert.ok(driver.bringUp({ features: 0n }).ok);
  const tx = driver.tx();
  const sent: Uint8Array[] = [];
  const layouts: Array<Parameters<typeof tx.add>[1]> = [{}, {}, { descriptors: 3 }, {}, { indirect: false, separateHeader: true }, {}, {}];
  for (let i = 0; i < 14; i++) {
    const f = makeFrame(i, 60 + 7 * i);
    assert.ok(tx.add(f, layouts[i % layouts.length]));
    sent.push(f);
  }
  // A runt (header and 10 bytes) between them: dropped, counted, used.
  assert.ok(tx.add(new Uint8Array(10)));
  for (let i = 14; i < 20; i++) {
    const f = makeFrame(i, 1000 + i);
    assert.ok(tx.add(f));
    sent.push(f);
  }
  tx.kick();
  const got = driver.receiveAtLeast(sent.length);
  assert.equal(got.map((g) => frameSeq(g.frame)), sent.map((_, i) => i));
  got.forEach((g, i) => assert.equal(g.frame, sent[i]));
  const c = rig.device.queuePairs()[0]!.counters;
  assert.is(c.txFrames, sent.length);
  assert.is(c.txDropRunt, 1);
  driver.reclaimTx();
  assert.is(tx.inFlight, 0, 'every chain came back used');
  assert.not.ok(driver.needsReset);
});

test('a backend that fills up mid-burst: the rest waits in the ring and leaves in order', () => {
  // Eight backend slots: a 32-frame burst stops at the ninth frame until the loopback's frames are received.
  const rig = createNetRig({ loopback: { slots: 8 } });
  const { driver } = rig;
  assert.ok(driver.bringUp({ features: 0n }).ok);
  const frames = Array.from({ length: 32 }, (_, i) => makeFrame(i, 64 + i));
  assert.is(driver.send(frames), 32);
  const got = driver.receiveAtLeast(frames.length);
  assert.equal(got.map((g) => g.frame), frames);
  const pair = rig.device.queuePairs()[0]!;
  assert.ok(pair.counters.txBackpressure > 0, 'the backend did push back');
  assert.is(pair.counters.txFrames, 32);
  driver.reclaimTx();
  assert.is(driver.tx().inFlight, 0);
});

test('with MTU negotiated, a one-descriptor frame over it is dropped as on the chain path', () => {
  const rig = createNetRig({ mtu: 1000 });
  const { driver } = rig;
  assert.ok(driver.bringUp({ features: featureMask(N.MTU) }).ok);
  const small = makeFrame(0, 600);
  const big = makeFrame(1, 1000 + 14 + 1);
  const after = makeFrame(2, 700);
  assert.is(driver.send([small, big, after]), 3);
  const got = driver.receiveAtLeast(2);
  assert.equal(got.map((g) => g.frame), [small, after]);
  assert.is(rig.device.queuePairs()[0]!.counters.txDropOverMtu, 1);
});

const HEADER_ONE_BUFFER = { flags: 0, gsoType: 0, hdrLen: 0, gsoSize: 0, csumStart: 0, csumOffset: 0, numBuffers: 1 };

for (const headroom of [0, 16]) {
  test(`receive, backend headroom ${headroom}: one-buffer frames intact, header with num_buffers 1, used lengths exact`, () => {
    const be = new LoopbackQueue({ headroom });
    const rig = createNetRig({ backends: [be] });
    const { driver } = rig;
    assert.ok(driver.bringUp({ features: 0n, rx: { sizes: [1526] } }).ok);
    const wire = Array.from({ length: 40 }, (_, i) => makeFrame(i, 60 + 31 * i));
    for (const f of wire) assert.ok(be.inject(f));
    driver.poll();
    const got = driver.receiveAtLeast(wire.length);
    assert.equal(got.map((g) => g.frame), wire);
    got.forEach((g, i) => {
      assert.equal(g.header, HEADER_ONE_BUFFER);
      assert.equal(g.lens, [12 + wire[i]!.length]);
    });
    assert.is(rig.device.queuePairs()[0]!.counters.rxFrames, wire.length);
    assert.is(rig.ram.memory.outOfRange, 0);
  });

  test(`receive, backend headroom ${headroom}: with mergeable buffers a frame larger than one buffer spans several, in order among the others`, () => {
    const be = new LoopbackQueue({ headroom });
    const rig = createNetRig({ backends: [be] });
    const { driver } = rig;
    assert.ok(driver.bringUp({ features: featureMask(N.MRG_RXBUF), rx: { sizes: [512] } }).ok);
    const sizes = [60, 100, 1200, 64, 500, 501, 1514, 70];
    const wire = sizes.map((len, i) => makeFrame(i, len));
    for (const f of wire) assert.ok(be.inject(f));
    driver.poll();
    const got: ReceivedFrame[] = driver.receiveAtLeast(wire.length);
    assert.equal(got.map((g) => g.frame), wire);
    got.forEach((g, i) => assert.is(g.header.numBuffers, Math.ceil((12 + sizes[i]!) / 512), `frame ${i}: buffers`));
  });
}

test('receive without mergeable buffers: a frame larger than the buffer is dropped and counted, the next one delivered', () => {
  const be = new LoopbackQueue({ headroom: 16 });
  const rig = createNetRig({ backends: [be] });
  const { driver } = rig;
  assert.ok(driver.bringUp({ features: 0n, rx: { sizes: [600] } }).ok);
  const wire = [makeFrame(0, 100), makeFrame(1, 700), makeFrame(2, 588), makeFrame(3, 589)];
  for (const f of wire) assert.ok(be.inject(f));
  driver.poll();
  const got = driver.receiveAtLeast(2);
  assert.equal(got.map((g) => g.frame), [wire[0], wire[2]]);
  assert.is(rig.device.queuePairs()[0]!.counters.rxDropTooSmall, 2);
});

test.run();
