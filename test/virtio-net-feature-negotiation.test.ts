// virtio-net feature negotiation through the PCI transport (§3.1.1, §5.1.3,
// §5.1.3.1): what the device offers, FEATURES_OK sticking for consistent
// sets and refused for sets that break a dependency, and the configuration
// fields the negotiated features make valid (§5.1.4).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DeviceStatus as S, NetFeature as N, NetStatus, VirtioFeature as V, featureBit, featureMask } from 'virtio-spec-types';
import { TEST_MAC, createNetRig } from '../src/test-driver';

const bits = (f: bigint): number[] => Array.from({ length: 128 }, (_, i) => i).filter((i) => (f >> BigInt(i)) & 1n);
const BASE = [
  V.VERSION_1, V.INDIRECT_DESC, V.EVENT_IDX, V.RING_PACKED,
  N.MAC, N.STATUS, N.MTU, N.MRG_RXBUF, N.SPEED_DUPLEX, N.CTRL_VQ, N.CTRL_RX, N.CTRL_MAC_ADDR, N.GUEST_ANNOUNCE,
  N.CSUM, N.HOST_TSO4, N.HOST_TSO6,
];

test('a one-pair device offers VERSION_1, rings, config and control features and software CSUM/TSO, but no MQ and no guest offloads', () => {
  const { driver } = createNetRig();
  assert.equal(bits(driver.deviceFeatures()), bits(featureMask(...BASE)));
});

test('a two-pair device also offers MQ; offloads:false and packed:false withdraw CSUM/TSO and RING_PACKED', () => {
  assert.equal(bits(createNetRig({ pairs: 2 }).driver.deviceFeatures()), bits(featureMask(...BASE, N.MQ)));
  const plain = createNetRig({ offloads: false, packed: false }).driver.deviceFeatures();
  assert.equal(bits(plain), bits(featureMask(...BASE.filter((b) => ![N.CSUM, N.HOST_TSO4, N.HOST_TSO6, V.RING_PACKED].includes(b as never)))));
});

test('FEATURES_OK sticks for everything offered; the configuration reads mac, LINK_UP, pairs and mtu', () => {
  const { driver } = createNetRig({ pairs: 2, mtu: 9000 });
  const offered = driver.deviceFeatures();
  const n = driver.negotiate(offered, true);
  assert.ok(n.accepted);
  assert.is(n.status, S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK);
  assert.is(driver.driverFeatures(), offered);
  assert.equal(driver.mac, TEST_MAC);
  assert.is(driver.netStatus, NetStatus.LINK_UP);
  assert.is(driver.maxVirtqueuePairs, 2);
  assert.is(driver.mtu, 9000);
  assert.is(driver.numQueues, 5);
});

test('the driver accepts only what is offered: wanting GUEST_CSUM and GUEST_TSO4 leaves them out', () => {
  const { driver } = createNetRig();
  const r = driver.bringUp({ features: featureMask(N.GUEST_CSUM, N.GUEST_TSO4, N.CSUM, V.EVENT_IDX) });
  assert.ok(r.ok);
  assert.equal(bits(r.features), bits(featureMask(V.VERSION_1, N.CSUM, V.EVENT_IDX)));
});

const refused: [string, bigint][] = [
  ['HOST_TSO4 without CSUM', featureMask(V.VERSION_1, N.HOST_TSO4)],
  ['HOST_TSO6 without CSUM', featureMask(V.VERSION_1, N.HOST_TSO6)],
  ['MQ without CTRL_VQ', featureMask(V.VERSION_1, N.MQ)],
  ['CTRL_RX without CTRL_VQ', featureMask(V.VERSION_1, N.CTRL_RX)],
  ['CTRL_MAC_ADDR without CTRL_VQ', featureMask(V.VERSION_1, N.CTRL_MAC_ADDR)],
  ['GUEST_ANNOUNCE without CTRL_VQ', featureMask(V.VERSION_1, N.GUEST_ANNOUNCE)],
  ['a bit not offered (GUEST_CSUM)', featureMask(V.VERSION_1, N.GUEST_CSUM)],
  ['no VERSION_1 (legacy)', featureMask(N.MAC)],
];
for (const [name, features] of refused) {
  test(`FEATURES_OK is refused for ${name}, DRIVER_OK cannot follow, and nothing runs`, () => {
    const rig = createNetRig({ pairs: 2 });
    const n = rig.driver.negotiate(features, true);
    assert.not.ok(n.accepted);
    assert.is(n.status, S.ACKNOWLEDGE | S.DRIVER);
    assert.is(rig.driver.addStatus(S.FEATURES_OK | S.DRIVER_OK) & (S.FEATURES_OK | S.DRIVER_OK), 0);
    assert.is(rig.device.queuePairs().length, 0);
    assert.is(rig.vpci.deviceErrors, 0);
    // §3.1.1: the driver gives up (FAILED) or resets and tries a smaller set.
    rig.driver.addStatus(S.FAILED);
    assert.ok(rig.driver.status & S.FAILED);
    const again = rig.driver.bringUp({ features: featureMask(N.CSUM, N.HOST_TSO4) });
    assert.ok(again.ok, 'a reset and a consistent set work');
  });
}

test('HOST_TSO4 and HOST_TSO6 with CSUM, MQ with CTRL_VQ are accepted', () => {
  const rig = createNetRig({ pairs: 2 });
  const n = rig.driver.negotiate(featureMask(V.VERSION_1, N.CSUM, N.HOST_TSO4, N.HOST_TSO6, N.CTRL_VQ, N.MQ, N.CTRL_RX), true);
  assert.ok(n.accepted);
});

test('driver_feature is frozen once FEATURES_OK is set (§3.1.1 step 5)', () => {
  const { driver } = createNetRig();
  const f = featureMask(V.VERSION_1, N.MAC);
  assert.ok(driver.negotiate(f, true).accepted);
  driver.writeCommon(8, 4, 0); // driver_feature_select
  driver.writeCommon(12, 4, 0xffff_ffff); // driver_feature
  assert.is(driver.driverFeatures(), f);
  assert.is(driver.features & featureBit(N.CSUM), 0n);
});

test.run();
