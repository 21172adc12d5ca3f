// The device status sequence (virtio 1.2 §2.1, §3.1.1) through the common
// configuration: feature negotiation and its refusals, activation at
// DRIVER_OK, and reset by writing 0.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DeviceStatus as S, VIRTIO_MSI_NO_VECTOR, VirtioFeature, VirtioPciCommonCfg as C, featureMask } from 'virtio-spec-types';
import { GuestMemory } from '../src/memory/guest-memory';
import { VirtioPciDevice } from '../src/virtio/pci/virtio-pci-device';
import {
  DEVICE_FEATURE_BIT,
  FULL_STATUS,
  FakeDevice,
  driverOk,
  negotiate,
  setupQueue,
  setupVirtioPci,
} from './support/virtio-pci-guest';

const V1 = featureMask(VirtioFeature.VERSION_1);

test('FEATURES_OK is kept when the device accepts; it sees exactly the driver features', () => {
  const t = setupVirtioPci();
  const features = V1 | featureMask(DEVICE_FEATURE_BIT);
  assert.is(negotiate(t, features), FULL_STATUS);
  assert.is(t.fake.acceptedFeatures, features);
});

test('FEATURES_OK is not kept when the device refuses the features', () => {
  const t = setupVirtioPci();
  t.fake.accept = false;
  assert.is(negotiate(t, V1), S.ACKNOWLEDGE | S.DRIVER);
});

test('FEATURES_OK is refused for features never offered or without VERSION_1, without asking the device', () => {
  const t = setupVirtioPci();
  assert.is(negotiate(t, V1 | featureMask(VirtioFeature.IN_ORDER)), S.ACKNOWLEDGE | S.DRIVER);
  assert.is(negotiate(t, featureMask(DEVICE_FEATURE_BIT)), S.ACKNOWLEDGE | S.DRIVER);
  assert.not.ok(t.fake.calls.includes('setDriverFeatures'));
});

test('driver_feature is frozen once FEATURES_OK is set', () => {
  const t = setupVirtioPci();
  negotiate(t, V1);
  t.common.write(C.DRIVER_FEATURE_SELECT, 4, 0);
  t.common.write(C.DRIVER_FEATURE, 4, 1 << DEVICE_FEATURE_BIT);
  assert.is(t.common.read(C.DRIVER_FEATURE, 4), 0);
});

test('status bits cannot be cleared except by reset; reserved bits and NEEDS_RESET are not driver-settable', () => {
  const t = setupVirtioPci();
  t.common.write(C.DEVICE_STATUS, 1, S.ACKNOWLEDGE | S.DRIVER);
  t.common.write(C.DEVICE_STATUS, 1, S.ACKNOWLEDGE);
  assert.is(t.common.read(C.DEVICE_STATUS, 1), S.ACKNOWLEDGE | S.DRIVER);
  t.common.write(C.DEVICE_STATUS, 1, S.ACKNOWLEDGE | S.DRIVER | 0x10 | 0x20 | S.DEVICE_NEEDS_RESET);
  assert.is(t.common.read(C.DEVICE_STATUS, 1), S.ACKNOWLEDGE | S.DRIVER);
  t.common.write(C.DEVICE_STATUS, 1, S.ACKNOWLEDGE | S.DRIVER | S.FAILED);
  assert.is(t.common.read(C.DEVICE_STATUS, 1), S.ACKNOWLEDGE | S.DRIVER | S.FAILED);
});

test('DRIVER_OK without accepted features is not kept and activates nothing', () => {
  const t = setupVirtioPci();
  t.common.write(C.DEVICE_STATUS, 1, S.ACKNOWLEDGE | S.DRIVER | S.DRIVER_OK);
  assert.is(t.common.read(C.DEVICE_STATUS, 1), S.ACKNOWLEDGE | S.DRIVER);
  t.fake.accept = false;
  t.common.write(C.DEVICE_STATUS, 1, S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK | S.DRIVER_OK);
  assert.is(t.common.read(C.DEVICE_STATUS, 1), S.ACKNOWLEDGE | S.DRIVER);
  assert.not.ok(t.fake.calls.includes('activate'));
});

test('DRIVER_OK activates the device with every queue as configured and the negotiated features', () => {
  const t = setupVirtioPci({ queueCount: 3, queueMaxSize: 256 });
  const features = V1 | featureMask(VirtioFeature.EVENT_IDX);
  negotiate(t, features);
  setupQueue(t, 0, { size: 128, desc: 0x1_0000_0000, driver: 0x2000, device: 0x3000 });
  setupQueue(t, 2, { desc: 0x4000, driver: 0x5002, device: 0x6004 });
  driverOk(t);
  assert.is(t.common.read(C.DEVICE_STATUS, 1), FULL_STATUS | S.DRIVER_OK);
  assert.is(t.fake.ctx?.features, features);
  assert.equal(t.fake.activatedQueues, [
    { index: 0, size: 128, kind: 'split', enabled: true, descAddr: 0x1_0000_0000, driverAddr: 0x2000, deviceAddr: 0x3000 },
    { index: 1, size: 256, kind: 'split', enabled: false, descAddr: 0, driverAddr: 0, deviceAddr: 0 },
    { index: 2, size: 256, kind: 'split', enabled: true, descAddr: 0x4000, driverAddr: 0x5002, deviceAddr: 0x6004 },
  ]);
});

test('a packed negotiation hands the device packed queues', () => {
  const t = setupVirtioPci();
  negotiate(t, V1 | featureMask(VirtioFeature.RING_PACKED));
  setupQueue(t, 0, { size: 100, desc: 0x1000, driver: 0x2004, device: 0x3004 });
  driverOk(t);
  assert.is(t.fake.activatedQueues?.[0]?.kind, 'packed');
  assert.is(t.fake.activatedQueues?.[0]?.size, 100);
});

test('writing 0 to device_status resets the device and every field to its reset value', () => {
  const t = setupVirtioPci();
  negotiate(t, V1);
  t.common.write(C.CONFIG_MSIX_VECTOR, 2, 0);
  setupQueue(t, 1, { size: 64, desc: 0x1000, driver: 0x2000, device: 0x3000, vector: 1 });
  driverOk(t);
  const oldCtx = t.fake.ctx;
  oldCtx?.signalUsed(1);
  assert.is(t.sink.level, true); // INTx (MSI-X is off)
  t.common.write(C.DEVICE_FEATURE_SELECT, 4, 1);
  t.common.write(C.DRIVER_FEATURE_SELECT, 4, 1);

  t.common.write(C.DEVICE_STATUS, 1, 0);
  assert.ok(t.fake.calls.includes('reset'));
  assert.is(t.common.read(C.DEVICE_STATUS, 1), 0);
  assert.is(t.common.read(C.DEVICE_FEATURE_SELECT, 4), 0);
  assert.is(t.common.read(C.DRIVER_FEATURE_SELECT, 4), 0);
  assert.is(t.common.read(C.DRIVER_FEATURE, 4), 0);
  t.common.write(C.DRIVER_FEATURE_SELECT, 4, 1);
  assert.is(t.common.read(C.DRIVER_FEATURE, 4), 0);
  assert.is(t.common.read(C.CONFIG_MSIX_VECTOR, 2), VIRTIO_MSI_NO_VECTOR);
  assert.is(t.common.read(C.QUEUE_SELECT, 2), 0);
  t.common.write(C.QUEUE_SELECT, 2, 1);
  assert.is(t.common.read(C.QUEUE_SIZE, 2), 256);
  assert.is(t.common.read(C.QUEUE_ENABLE, 2), 0);
  assert.is(t.common.read(C.QUEUE_MSIX_VECTOR, 2), VIRTIO_MSI_NO_VECTOR);
  assert.is(t.common.read(C.QUEUE_DESC_LO, 4), 0);
  assert.is(t.common.read(C.QUEUE_DEVICE_LO, 4), 0);
  assert.is(t.sink.level, false); // ISR cleared, INTx deasserted
  assert.is(t.guest.read(t.s.isr, 1), 0);
  // the context of the old activation is dead
  oldCtx?.signalUsed(1);
  oldCtx?.signalConfig();
  oldCtx?.markNeedsReset();
  assert.is(t.sink.level, false);
  assert.is(t.common.read(C.DEVICE_STATUS, 1), 0);
  // and the device can be brought up again
  assert.is(negotiate(t, V1), FULL_STATUS);
});

test('the transport withholds features it cannot carry', () => {
  const all = featureMask(
    VirtioFeature.VERSION_1,
    VirtioFeature.NOTIFICATION_DATA,
    VirtioFeature.NOTIF_CONFIG_DATA,
    VirtioFeature.SR_IOV,
    VirtioFeature.ADMIN_VQ,
    VirtioFeature.RING_RESET,
    VirtioFeature.IN_ORDER,
  );
  const offered = (queueReset: boolean): bigint => {
    const t = setupVirtioPci({ features: all, queueReset });
    t.common.write(C.DEVICE_FEATURE_SELECT, 4, 1);
    return BigInt(t.common.read(C.DEVICE_FEATURE, 4)) << 32n;
  };
  assert.is(offered(false), featureMask(VirtioFeature.VERSION_1, VirtioFeature.IN_ORDER));
  assert.is(offered(true), featureMask(VirtioFeature.VERSION_1, VirtioFeature.IN_ORDER, VirtioFeature.RING_RESET));
});

test('set-up errors are thrown with the option named', () => {
  const memory = new GuestMemory([{ gpa: 0, bytes: new Uint8Array(4096) }]);
  assert.throws(() => new VirtioPciDevice(new FakeDevice({ features: featureMask(DEVICE_FEATURE_BIT) }), { memory }), /VERSION_1/);
  assert.throws(() => new VirtioPciDevice(new FakeDevice({ queueMaxSize: 100 }), { memory }), /queueMaxSize/);
  assert.throws(() => new VirtioPciDevice(new FakeDevice(), { memory, msixVectors: 0x801 }), /msixVectors/);
  assert.throws(() => new VirtioPciDevice(new FakeDevice(), { memory, subsystemId: 0x3f }), /subsystemId/);
});

test.run();
