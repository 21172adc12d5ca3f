// Device reset (§2.4, §4.1.4.3.1) and re-initialisation: writing 0 to
// device_status returns every register to its reset value and stops the
// device using the old rings; a full bring-up afterwards, with a different
// ring layout and features, carries traffic again.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DeviceStatus as S, NetFeature as N, VirtioFeature as V, VirtioPciCommonCfg as C, featureMask } from 'virtio-spec-types';
import { TEST_MAC, createNetRig } from '../src/test-driver';
import { frameSeq, makeFrame } from './support/frames';

const frames = (n: number, tag: number): Uint8Array[] => Array.from({ length: n }, (_, i) => makeFrame(i, 60 + ((i * 97) % 1455), tag));

test('status 0 resets status, features, queue registers and vectors', () => {
  const { driver } = createNetRig();
  assert.ok(driver.bringUp({ features: featureMask(V.EVENT_IDX, N.CTRL_VQ) }).ok);
  assert.is(driver.status, S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK | S.DRIVER_OK);
  driver.reset();
  assert.is(driver.status, 0);
  assert.is(driver.driverFeatures(), 0n);
  assert.is(driver.configVector, 0xffff);
  for (let q = 0; q < 3; q++) {
    driver.writeCommon(C.QUEUE_SELECT, 2, q);
    assert.is(driver.readCommon(C.QUEUE_ENABLE, 2), 0, `queue ${q} disabled`);
    assert.is(driver.readCommon(C.QUEUE_SIZE, 2), 256, `queue ${q} size back to the maximum`);
    assert.is(driver.readCommon(C.QUEUE_MSIX_VECTOR, 2), 0xffff);
    assert.is(driver.readCommon(C.QUEUE_DESC_LO, 4), 0);
  }
});

test('after a reset the old rings are dead: chains left in them are never used', () => {
  const rig = createNetRig();
  const { driver } = rig;
  driver.bringUp({ features: 0n });
  const tx = driver.tx();
  for (const f of frames(5, 1)) assert.ok(tx.add(f)); // added, never published
  const oldQueue = tx.queue;
  driver.reset();
  oldQueue.publish();
  oldQueue.notify(); // a stale kick: the queue is no longer enabled
  assert.is(rig.loopbacks[0]!.txFrames, 0);
  assert.is(oldQueue.pollUsed().length, 0);
  assert.is(rig.vpci.deviceErrors, 0);
});

test('reset in the middle of traffic, then split -> packed with mergeable buffers: traffic flows again', () => {
  const rig = createNetRig();
  const { driver } = rig;
  assert.ok(driver.bringUp({ features: featureMask(V.EVENT_IDX, V.INDIRECT_DESC) }).ok);
  const first = frames(300, 1);
  assert.is(driver.send(first), 300);
  const got1 = driver.receiveAtLeast(300);
  assert.is(got1.length, 300);
  got1.forEach((r, i) => assert.equal(r.frame, first[i]));
  driver.send(frames(10, 2).slice(0, 10), { indirect: true }); // more in flight
  driver.reset();
  assert.is(rig.device.queuePairs().length, 0);
  // Whatever the backend still held was on the wire; drain it before looking at the new run.
  rig.loopbacks[0]!.rxRelease(rig.loopbacks[0]!.rxPeek(1 << 20));

  const r = driver.bringUp({ features: featureMask(V.RING_PACKED, N.MRG_RXBUF, V.EVENT_IDX), queueSize: 128, rx: { sizes: [512] } });
  assert.ok(r.ok);
  assert.is(driver.ringKind, 'packed');
  const second = frames(200, 3);
  assert.is(driver.send(second), 200);
  const got2 = driver.receiveAtLeast(200);
  assert.is(got2.length, 200);
  got2.forEach((g, i) => {
    assert.is(frameSeq(g.frame), i);
    assert.equal(g.frame, second[i]);
    assert.is(g.header.numBuffers, Math.ceil((12 + second[i]!.length) / 512));
  });
  assert.equal(driver.rx().problems, []);
  assert.is(rig.vpci.deviceErrors, 0);
});

test('a MAC set through the control queue and a pending ANNOUNCE do not survive a reset', () => {
  const rig = createNetRig();
  const { driver } = rig;
  driver.bringUp({ features: featureMask(N.MAC, N.STATUS, N.CTRL_VQ, N.CTRL_MAC_ADDR, N.GUEST_ANNOUNCE) });
  const mac = Uint8Array.of(0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee);
  assert.is(driver.setMac(mac), 0);
  assert.equal(driver.mac, mac);
  rig.device.announce();
  assert.is(driver.netStatus & 2, 2);
  driver.reset();
  assert.equal(driver.mac, TEST_MAC);
  assert.is(driver.netStatus, 1, 'LINK_UP only');
});

test.run();
