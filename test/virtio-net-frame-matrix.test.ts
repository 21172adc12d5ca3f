// Every frame size from 60 to 1514 bytes crosses the device both ways intact
// (driver -> transmitq -> backend -> receiveq -> driver, and wire -> driver)
// for each ring layout (split §2.7 / packed §2.8), with and without indirect
// descriptors (§2.7.5.3 / §2.8.7) and with and without EVENT_IDX (§2.7.10 /
// §2.8.10), with header and frame spread over several descriptors (§5.1.6.2).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VirtioFeature as V, featureMask } from 'virtio-spec-types';
import { createNetRig, type ReceivedFrame } from '../src/test-driver';
import { frameSeq, makeFrame } from './support/frames';

const SIZES = Array.from({ length: 1514 - 60 + 1 }, (_, i) => 60 + i);
const CHUNK = 48;

for (const packed of [false, true]) {
  for (const indirect of [false, true]) {
    for (const eventIdx of [false, true]) {
      const name = `${packed ? 'packed' : 'split'}, ${indirect ? 'indirect' : 'direct'}, ${eventIdx ? 'EVENT_IDX' : 'no EVENT_IDX'}`;
      test(`${name}: 60..1514-byte frames round-trip byte for byte`, () => {
        const rig = createNetRig();
        const { driver } = rig;
        const features = featureMask(...(packed ? [V.RING_PACKED] : []), ...(indirect ? [V.INDIRECT_DESC] : []), ...(eventIdx ? [V.EVENT_IDX] : []));
        const rxSizes = indirect ? [100, 426, 1000] : eventIdx ? [12, 1000, 514] : [1526];
        const r = driver.bringUp({ features, rx: { sizes: rxSizes, indirect } });
        assert.ok(r.ok);
        assert.is(r.features, features | featureMask(V.VERSION_1));
        const sent = SIZES.map((len, i) => makeFrame(i, len, 1));
        const got: ReceivedFrame[] = [];
        for (let i = 0; i < sent.length; i += CHUNK) {
          const chunk = sent.slice(i, i + CHUNK);
          chunk.forEach((f, k) => {
            const n = i + k;
            const ok = driver.tx().add(f, { indirect, descriptors: 1 + (n % 3), separateHeader: n % 2 === 0 });
            assert.ok(ok, `frame ${n} queued`);
          });
          driver.tx().kick();
          got.push(...driver.receiveAtLeast(chunk.length));
        }
        assert.is(got.length, sent.length);
        got.forEach((g, i) => {
          assert.is(frameSeq(g.frame), i, `frame ${i} in order and intact`);
          assert.equal(g.frame, sent[i]);
          assert.equal(g.header, { flags: 0, gsoType: 0, hdrLen: 0, gsoSize: 0, csumStart: 0, csumOffset: 0, numBuffers: 1 });
        });
        assert.equal(driver.rx().problems, []);
        const c = rig.device.queuePairs()[0]!.counters;
        assert.is(c.txFrames, sent.length);
        assert.is(c.rxFrames, sent.length);
        assert.is(c.rxDropTooSmall + c.txDropRunt + c.txDropOversize, 0);
        assert.ok(driver.queueInterrupts(0) > 0 && driver.queueInterrupts(1) > 0);
        driver.reclaimTx();
        assert.is(driver.tx().inFlight, 0, 'every transmit chain came back');

        // Wire -> guest only.
        const wire = [60, 61, 64, 128, 511, 512, 1000, 1513, 1514].map((len, i) => makeFrame(10_000 + i, len, 2));
        for (const f of wire) assert.ok(rig.loopbacks[0]!.inject(f));
        driver.poll();
        const fromWire = driver.receiveAtLeast(wire.length);
        assert.equal(fromWire.map((g) => g.frame), wire);
        assert.not.ok(driver.needsReset);
        assert.is(rig.vpci.deviceErrors, 0);
        assert.is(rig.ram.memory.outOfRange, 0, 'the device never touched memory outside RAM');
      });
    }
  }
}

test.run();
