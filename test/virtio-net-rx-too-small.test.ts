// Without MRG_RXBUF every frame must fit in one receive chain (§5.1.6.3.1:
// the driver SHOULD post buffers large enough). A frame that does not fit
// is dropped and counted, and the chain stays available for the next frame.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VirtioFeature as V, featureMask } from 'virtio-spec-types';
import { createNetRig } from '../src/test-driver';
import { makeFrame } from './support/frames';

for (const packed of [false, true]) {
  test(`${packed ? 'packed' : 'split'}: a 1514-byte frame for a 512-byte chain is dropped; the chain takes the next frame`, () => {
    const rig = createNetRig();
    const { driver } = rig;
    assert.ok(driver.bringUp({ features: packed ? featureMask(V.RING_PACKED) : 0n, rx: { sizes: [256, 256], count: 1 } }).ok);
    const rx = driver.rx();
    const posted = rx.outstanding;
    assert.is(posted, 1);
    driver.send(makeFrame(1, 1514));
    assert.is(driver.receive().length, 0);
    const c = rig.device.queuePairs()[0]!.counters;
    assert.is(c.rxDropTooSmall, 1);
    assert.is(c.rxFrames, 0);
    assert.is(rig.loopbacks[0]!.rxPeek(10), 0, 'dropped, not left in the backend');
    assert.is(rx.outstanding, 1, 'the chain was kept');
    const small = makeFrame(2, 500);
    driver.send(small);
    const got = driver.receive();
    assert.is(got.length, 1);
    assert.equal(got[0]!.frame, small);
    assert.equal(got[0]!.lens, [512]);
    // Exactly full: 12 + 500 = 512 fits; 501 does not.
    driver.send(makeFrame(3, 501));
    assert.is(driver.receive().length, 0);
    assert.is(c.rxDropTooSmall, 2);
    assert.not.ok(driver.needsReset);
  });
}

test.run();
