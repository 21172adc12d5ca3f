// Virtqueue set-up through the common configuration (virtio 1.2 §4.1.5.1.3),
// available buffer notifications through the notify structure (§4.1.5.2)
// and per-queue reset (§2.6.1, §4.1.4.3.2).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VirtioFeature, VirtioPciCommonCfg as C, featureMask } from 'virtio-spec-types';
import { FULL_STATUS, driverOk, negotiate, setupQueue, setupVirtioPci, type VirtioPciSetup } from './support/virtio-pci-guest';

const V1 = featureMask(VirtioFeature.VERSION_1);

function notifyAddress(t: VirtioPciSetup, queue: number): number {
  t.common.write(C.QUEUE_SELECT, 2, queue);
  return t.s.notify + t.common.read(C.QUEUE_NOTIFY_OFF, 2) * t.s.notifyMultiplier;
}

function running(options = {}): VirtioPciSetup {
  const t = setupVirtioPci(options);
  negotiate(t, V1);
  setupQueue(t, 0, { desc: 0x1000, driver: 0x2000, device: 0x3000 });
  setupQueue(t, 2, { desc: 0x4000, driver: 0x5000, device: 0x6000 });
  driverOk(t);
  return t;
}

test('queue_enable needs features negotiated first', () => {
  const t = setupVirtioPci();
  setupQueue(t, 0, { desc: 0x1000, driver: 0x2000, device: 0x3000 });
  assert.is(t.common.read(C.QUEUE_ENABLE, 2), 0);
  negotiate(t, V1);
  t.common.write(C.QUEUE_SELECT, 2, 0);
  t.common.write(C.QUEUE_ENABLE, 2, 1);
  assert.is(t.common.read(C.QUEUE_ENABLE, 2), 1);
});

test('a queue whose areas break §2.7 alignment or lie beyond physical memory is not enabled', () => {
  const t = setupVirtioPci();
  negotiate(t, V1);
  for (const bad of [
    { desc: 0x1008, driver: 0x2000, device: 0x3000 },
    { desc: 0x1000, driver: 0x2001, device: 0x3000 },
    { desc: 0x1000, driver: 0x2000, device: 0x3002 },
    { desc: 0x1000, driver: 0x2000, device: 0x10_0000_0000_0000 },
  ]) {
    setupQueue(t, 1, bad);
    assert.is(t.common.read(C.QUEUE_ENABLE, 2), 0, JSON.stringify(bad));
  }
});

test('an enabled queue keeps its size and addresses; writing 0 to queue_enable does nothing', () => {
  const t = setupVirtioPci();
  negotiate(t, V1);
  setupQueue(t, 1, { size: 64, desc: 0x1000, driver: 0x2000, device: 0x3000 });
  t.common.write(C.QUEUE_SIZE, 2, 32);
  t.common.write(C.QUEUE_DESC_LO, 4, 0x8000);
  t.common.write(C.QUEUE_ENABLE, 2, 0);
  assert.is(t.common.read(C.QUEUE_SIZE, 2), 64);
  assert.is(t.common.read(C.QUEUE_DESC_LO, 4), 0x1000);
  assert.is(t.common.read(C.QUEUE_ENABLE, 2), 1);
  // the vector may still be changed
  t.common.write(C.QUEUE_MSIX_VECTOR, 2, 1);
  assert.is(t.common.read(C.QUEUE_MSIX_VECTOR, 2), 1);
});

test('a 16-bit write to a queue notify address notifies that queue', () => {
  const t = running();
  t.guest.write(notifyAddress(t, 2), 2, 2);
  t.guest.write(notifyAddress(t, 0), 2, 0);
  t.guest.write(notifyAddress(t, 2), 4, 2); // NOTIFICATION_DATA-style 32-bit write
  assert.equal(t.fake.notifies, [2, 0, 2]);
  assert.is(notifyAddress(t, 2) - t.guest.barAddress(t.slot, 0), t.vpci.notifyOffset(2));
});

test('notifications for disabled or missing queues, odd offsets and byte writes are dropped', () => {
  const t = running();
  t.guest.write(notifyAddress(t, 1), 2, 1); // queue 1 not enabled
  t.guest.write(t.s.notify + 3 * t.s.notifyMultiplier, 2, 3); // no queue 3
  t.guest.write(t.s.notify + 2, 2, 0);
  t.guest.write(t.s.notify, 1, 0);
  assert.is(t.guest.read(t.s.notify, 2), 0);
  assert.equal(t.fake.notifies, []);
});

test('notifications before DRIVER_OK do not reach the device', () => {
  const t = setupVirtioPci();
  negotiate(t, V1);
  setupQueue(t, 0, { desc: 0x1000, driver: 0x2000, device: 0x3000 });
  t.guest.write(notifyAddress(t, 0), 2, 0);
  assert.equal(t.fake.notifies, []);
});

test('a queue enabled after DRIVER_OK is handed to the device', () => {
  const t = running({ queueReset: true });
  setupQueue(t, 1, { size: 16, desc: 0x7000, driver: 0x8000, device: 0x9000 });
  assert.equal(t.fake.lateEnables, [
    { index: 1, size: 16, kind: 'split', enabled: true, descAddr: 0x7000, driverAddr: 0x8000, deviceAddr: 0x9000 },
  ]);
});

test('with VIRTIO_F_RING_RESET, queue_reset resets one queue; it can be set up again', () => {
  const t = setupVirtioPci({ queueReset: true, features: V1 | featureMask(VirtioFeature.RING_RESET) });
  assert.is(negotiate(t, V1 | featureMask(VirtioFeature.RING_RESET)), FULL_STATUS);
  setupQueue(t, 0, { size: 64, desc: 0x1000, driver: 0x2000, device: 0x3000, vector: 0 });
  driverOk(t);
  t.common.write(C.QUEUE_SELECT, 2, 0);
  t.common.write(C.QUEUE_RESET, 2, 1);
  assert.equal(t.fake.queueResets, [0]);
  // §4.1.4.3.2: 0 in queue_reset and queue_enable once the reset completed
  assert.is(t.common.read(C.QUEUE_RESET, 2), 0);
  assert.is(t.common.read(C.QUEUE_ENABLE, 2), 0);
  assert.is(t.common.read(C.QUEUE_SIZE, 2), 256);
  t.guest.write(notifyAddress(t, 0), 2, 0);
  assert.equal(t.fake.notifies, []);
  t.fake.ctx?.signalUsed(0);
  assert.is(t.sink.level, false); // a reset queue does not interrupt
  setupQueue(t, 0, { size: 32, desc: 0xa000, driver: 0xb000, device: 0xc000 });
  assert.is(t.fake.lateEnables[0]?.size, 32);
  assert.is(t.fake.lateEnables[0]?.descAddr, 0xa000);
  t.guest.write(notifyAddress(t, 0), 2, 0);
  assert.equal(t.fake.notifies, [0]);
});

test('without VIRTIO_F_RING_RESET negotiated, queue_reset is ignored', () => {
  const t = running({ queueReset: true });
  t.common.write(C.QUEUE_SELECT, 2, 0);
  t.common.write(C.QUEUE_RESET, 2, 1);
  assert.equal(t.fake.queueResets, []);
  assert.is(t.common.read(C.QUEUE_ENABLE, 2), 1);
});

test.run();
