// DEVICE_NEEDS_RESET (virtio 1.2 §2.1.2) and configuration change
// notifications, and the transport catching device exceptions so nothing a
// guest does can throw into the VMM.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DeviceStatus as S, VirtioFeature, VirtioPciCommonCfg as C, featureMask } from 'virtio-spec-types';
import { FULL_STATUS, driverOk, enableMsix, negotiate, setupQueue, setupVirtioPci, type VirtioPciSetup } from './support/virtio-pci-guest';

function running(msix: boolean): VirtioPciSetup {
  const t = setupVirtioPci();
  negotiate(t, featureMask(VirtioFeature.VERSION_1));
  if (msix) enableMsix(t, 4);
  t.common.write(C.CONFIG_MSIX_VECTOR, 2, 3);
  setupQueue(t, 0, { desc: 0x1000, driver: 0x2000, device: 0x3000, vector: 1 });
  driverOk(t);
  return t;
}

test('markNeedsReset sets DEVICE_NEEDS_RESET and sends a config change on the config vector', () => {
  const t = running(true);
  t.fake.ctx?.markNeedsReset();
  assert.is(t.common.read(C.DEVICE_STATUS, 1), FULL_STATUS | S.DRIVER_OK | S.DEVICE_NEEDS_RESET);
  assert.equal(t.sink.msis, [{ address: 0xfee0_3000, data: 0x4003 }]);
  t.fake.ctx?.markNeedsReset(); // once is enough
  assert.is(t.sink.msis.length, 1);
  // DEVICE_NEEDS_RESET survives driver status writes, and goes with a reset
  t.common.write(C.DEVICE_STATUS, 1, FULL_STATUS | S.DRIVER_OK | S.FAILED);
  assert.is(t.common.read(C.DEVICE_STATUS, 1) & S.DEVICE_NEEDS_RESET, S.DEVICE_NEEDS_RESET);
  t.common.write(C.DEVICE_STATUS, 1, 0);
  assert.is(t.common.read(C.DEVICE_STATUS, 1), 0);
});

test('without MSI-X the config change is ISR bit 1 and INTx', () => {
  const t = running(false);
  t.fake.ctx?.markNeedsReset();
  assert.is(t.sink.level, true);
  assert.is(t.guest.read(t.s.isr, 1), 2);
});

test('a device configuration change: generation read by the driver and a config interrupt', () => {
  const t = running(true);
  t.fake.configGeneration += 1;
  t.fake.ctx?.signalConfig();
  assert.is(t.common.read(C.CONFIG_GENERATION, 1), 1);
  assert.equal(t.sink.msis, [{ address: 0xfee0_3000, data: 0x4003 }]);
});

test('a device that throws is marked NEEDS_RESET; the access returns normally', () => {
  const t = running(true);
  t.fake.throwOn = 'queueNotify';
  assert.ok(t.guest.write(t.s.notify, 2, 0));
  assert.is(t.vpci.deviceErrors, 1);
  assert.match(String(t.vpci.lastDeviceError), /queueNotify failed/);
  assert.ok(t.common.read(C.DEVICE_STATUS, 1) & S.DEVICE_NEEDS_RESET);
  assert.is(t.sink.msis.length, 1);
  t.fake.throwOn = 'readConfig';
  assert.is(t.guest.read(t.s.device, 4), 0);
  assert.is(t.vpci.deviceErrors, 2);
});

test('a device that throws in setDriverFeatures refuses FEATURES_OK and DRIVER_OK', () => {
  const t = setupVirtioPci();
  t.fake.throwOn = 'setDriverFeatures';
  assert.is(negotiate(t, featureMask(VirtioFeature.VERSION_1)), S.ACKNOWLEDGE | S.DRIVER | S.DEVICE_NEEDS_RESET);
  t.common.write(C.DEVICE_STATUS, 1, S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK | S.DRIVER_OK);
  assert.not.ok(t.common.read(C.DEVICE_STATUS, 1) & S.DRIVER_OK);
  assert.not.ok(t.fake.calls.includes('activate'));
  // a reset recovers
  t.common.write(C.DEVICE_STATUS, 1, 0);
  assert.is(negotiate(t, featureMask(VirtioFeature.VERSION_1)), FULL_STATUS);
});

test('a device that throws in activate leaves DRIVER_OK | DEVICE_NEEDS_RESET and signals it', () => {
  const t = setupVirtioPci();
  negotiate(t, featureMask(VirtioFeature.VERSION_1));
  t.fake.throwOn = 'activate';
  driverOk(t);
  assert.is(t.common.read(C.DEVICE_STATUS, 1), FULL_STATUS | S.DRIVER_OK | S.DEVICE_NEEDS_RESET);
  assert.is(t.sink.level, true); // config change via ISR/INTx
});

test.run();
