// The whole path with the real backend: test driver -> virtio-pci ->
// virtio-net -> AF_XDP socket on one end of a veth pair in its own
// namespace, and an AF_XDP socket on the peer end. N frames from the driver
// reach the peer intact, and N frames from the peer reach the driver intact.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VirtioFeature as V, featureMask } from 'virtio-spec-types';
import { createNetRig } from '../src/test-driver';
import { driverToPeer, peerToDriver } from './support/driver-peer';
import { frameSeq, makeFrame } from './support/frames';
import { openBackend, withVeth } from './support/veth-backends';

const N = 1000;
const CHUNK = 100;

for (const packed of [false, true]) {
  test(`${packed ? 'packed' : 'split'}: ${N} frames each way between the test driver and the veth peer, intact and in order`, async () => {
    await withVeth('vnet', {}, async (pair) => {
      const a = openBackend(pair.a.netns, `af-xdp,id=a,ifname=${pair.a.ifname}`);
      const b = openBackend(pair.b.netns, `af-xdp,id=b,ifname=${pair.b.ifname}`);
      try {
        const rig = createNetRig({ backends: [a.queues[0]!] });
        const { driver } = rig;
        assert.ok(driver.bringUp({ features: featureMask(V.EVENT_IDX, V.INDIRECT_DESC, ...(packed ? [V.RING_PACKED] : [])) }).ok);
        const peer = b.queues[0]!;

        // Driver -> peer.
        const out = Array.from({ length: N }, (_, i) => makeFrame(i, 60 + ((i * 53) % 1455), 1));
        const atPeer = await driverToPeer(driver, peer, out, CHUNK, (i) => ({ indirect: i % 200 === 0 }));
        assert.is(atPeer.length, N, `peer received ${atPeer.length} of ${N}`);
        atPeer.forEach((f, i) => {
          assert.is(frameSeq(f), i);
          assert.equal(f, out[i]);
        });

        // Peer -> driver.
        const back = Array.from({ length: N }, (_, i) => makeFrame(i, 60 + ((i * 71) % 1455), 2));
        const atDriver = await peerToDriver(driver, peer, back, CHUNK);
        assert.is(atDriver.length, N, `driver received ${atDriver.length} of ${N}`);
        atDriver.forEach((g, i) => {
          assert.is(frameSeq(g.frame), i);
          assert.equal(g.frame, back[i]);
          assert.is(g.header.numBuffers, 1);
        });
        const c = rig.device.queuePairs()[0]!.counters;
        assert.is(c.txFrames, N);
        assert.ok(c.rxFrames >= N);
        assert.equal(driver.rx().problems, []);
        assert.not.ok(driver.needsReset);
        assert.is(rig.vpci.deviceErrors, 0);
      } finally {
        a.close();
        b.close();
      }
    });
  });
}

test.run();
