// Register-level behaviour of the common configuration structure (virtio 1.2
// §4.1.4.3): field widths, unknown offsets, read-only fields, the 64-bit
// feature windows, queue selection and MSI-X vector mapping.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VIRTIO_MSI_NO_VECTOR, VirtioFeature, VirtioPciCommonCfg as C, featureMask } from 'virtio-spec-types';
import { DEVICE_FEATURE_BIT, FULL_STATUS, negotiate, setupVirtioPci } from './support/virtio-pci-guest';

const OFFER = featureMask(VirtioFeature.VERSION_1, VirtioFeature.RING_PACKED, VirtioFeature.EVENT_IDX, DEVICE_FEATURE_BIT);

test('device_feature shows 32 feature bits per device_feature_select value', () => {
  const t = setupVirtioPci();
  const words = [0, 1, 2, 3, 0xffffffff].map((select) => {
    t.common.write(C.DEVICE_FEATURE_SELECT, 4, select);
    assert.is(t.common.read(C.DEVICE_FEATURE_SELECT, 4), select);
    return t.common.read(C.DEVICE_FEATURE, 4);
  });
  assert.equal(words, [Number(OFFER & 0xffffffffn), Number(OFFER >> 32n), 0, 0, 0]);
});

test('driver_feature stores 32 bits per driver_feature_select value and reads them back', () => {
  const t = setupVirtioPci();
  t.common.write(C.DRIVER_FEATURE_SELECT, 4, 1);
  t.common.write(C.DRIVER_FEATURE, 4, 0x1);
  t.common.write(C.DRIVER_FEATURE_SELECT, 4, 0);
  t.common.write(C.DRIVER_FEATURE, 4, 0x20);
  assert.is(t.common.read(C.DRIVER_FEATURE, 4), 0x20);
  t.common.write(C.DRIVER_FEATURE_SELECT, 4, 1);
  assert.is(t.common.read(C.DRIVER_FEATURE, 4), 0x1);
  t.common.write(C.DRIVER_FEATURE_SELECT, 4, 7);
  t.common.write(C.DRIVER_FEATURE, 4, 0xffff);
  assert.is(t.common.read(C.DRIVER_FEATURE, 4), 0);
});

test('device-owned fields: num_queues, config_generation, queue_notify_off; writes to them are ignored', () => {
  const t = setupVirtioPci();
  assert.is(t.common.read(C.NUM_QUEUES, 2), 3);
  t.common.write(C.NUM_QUEUES, 2, 9);
  assert.is(t.common.read(C.NUM_QUEUES, 2), 3);
  t.fake.configGeneration = 0x1234;
  assert.is(t.common.read(C.CONFIG_GENERATION, 1), 0x34);
  t.common.write(C.CONFIG_GENERATION, 1, 0);
  assert.is(t.common.read(C.CONFIG_GENERATION, 1), 0x34);
  t.common.write(C.DEVICE_FEATURE_SELECT, 4, 0);
  t.common.write(C.DEVICE_FEATURE, 4, 0);
  assert.is(t.common.read(C.DEVICE_FEATURE, 4), Number(OFFER & 0xffffffffn));
  for (let q = 0; q < 3; q++) {
    t.common.write(C.QUEUE_SELECT, 2, q);
    t.common.write(C.QUEUE_NOTIFY_OFF, 2, 7);
    assert.is(t.common.read(C.QUEUE_NOTIFY_OFF, 2), q);
    assert.is(t.s.notify + t.common.read(C.QUEUE_NOTIFY_OFF, 2) * t.s.notifyMultiplier - t.guest.barAddress(t.slot, 0), t.vpci.notifyOffset(q));
  }
});

test('accesses of the wrong width read 0 and write nothing (§4.1.3.1)', () => {
  const t = setupVirtioPci();
  assert.is(t.common.read(C.NUM_QUEUES, 1), 0);
  assert.is(t.common.read(C.NUM_QUEUES, 4), 0);
  assert.is(t.common.read(C.CONFIG_MSIX_VECTOR, 4), 0); // would cover msix_config + num_queues
  assert.is(t.common.read(C.DEVICE_STATUS, 2), 0);
  assert.is(t.common.read(C.DEVICE_FEATURE, 2), 0);
  assert.is(t.common.read(C.QUEUE_SIZE, 1), 0);
  assert.is(t.common.read(C.QUEUE_SIZE + 1, 1), 0);
  t.common.write(C.QUEUE_SELECT, 1, 2);
  t.common.write(C.QUEUE_SELECT, 4, 2);
  assert.is(t.common.read(C.QUEUE_SELECT, 2), 0);
  t.common.write(C.DEVICE_STATUS, 2, 1);
  t.common.write(C.DEVICE_STATUS - 1, 4, 0x0100_0000);
  assert.is(t.common.read(C.DEVICE_STATUS, 1), 0);
});

test('offsets past the structure (and odd offsets inside it) read 0 and ignore writes', () => {
  const t = setupVirtioPci();
  for (const offset of [C.SIZE, C.SIZE + 2, 0x100, 0xffc, 1, 3, 17, 23]) {
    t.common.write(offset, 4, 0xffffffff);
    t.common.write(offset, 2, 0xffff);
    t.common.write(offset, 1, 0xff);
    assert.is(t.common.read(offset, 4), 0, `offset ${offset}`);
    assert.is(t.common.read(offset, 1), 0, `offset ${offset}`);
  }
  assert.is(t.common.read(C.DEVICE_STATUS, 1), 0);
  assert.is(t.common.read(C.NUM_QUEUES, 2), 3);
});

test('a QWORD load is two DWORD loads, low half first', () => {
  const t = setupVirtioPci();
  t.common.write(C.DEVICE_FEATURE_SELECT, 4, 1);
  const qword = t.guest.read(t.s.common + C.DEVICE_FEATURE_SELECT, 8) ?? -1;
  assert.is(qword, Number(OFFER >> 32n) * 0x1_0000_0000 + 1);
});

test('out-of-range queue_select: queue_size 0, NO_VECTOR, nothing writable', () => {
  const t = setupVirtioPci();
  t.common.write(C.QUEUE_SELECT, 2, 3);
  assert.is(t.common.read(C.QUEUE_SELECT, 2), 3);
  assert.is(t.common.read(C.QUEUE_SIZE, 2), 0);
  assert.is(t.common.read(C.QUEUE_MSIX_VECTOR, 2), VIRTIO_MSI_NO_VECTOR);
  assert.is(t.common.read(C.QUEUE_ENABLE, 2), 0);
  t.common.write(C.QUEUE_DESC_LO, 4, 0x1000);
  t.common.write(C.QUEUE_ENABLE, 2, 1);
  t.common.write(C.QUEUE_SIZE, 2, 16);
  assert.is(t.common.read(C.QUEUE_DESC_LO, 4), 0);
  assert.is(t.common.read(C.QUEUE_SIZE, 2), 0);
  t.common.write(C.QUEUE_SELECT, 2, 0xffff);
  assert.is(t.common.read(C.QUEUE_SIZE, 2), 0);
});

test('queue_size starts at the maximum; split rings accept only powers of 2 up to it', () => {
  const t = setupVirtioPci({ queueMaxSize: 256 });
  t.common.write(C.QUEUE_SELECT, 2, 1);
  assert.is(t.common.read(C.QUEUE_SIZE, 2), 256);
  for (const bad of [0, 100, 512, 0xffff]) {
    t.common.write(C.QUEUE_SIZE, 2, bad);
    assert.is(t.common.read(C.QUEUE_SIZE, 2), 256, `size ${bad}`);
  }
  t.common.write(C.QUEUE_SIZE, 2, 64);
  assert.is(t.common.read(C.QUEUE_SIZE, 2), 64);
  t.common.write(C.QUEUE_SIZE, 2, 1);
  assert.is(t.common.read(C.QUEUE_SIZE, 2), 1);
});

test('with VIRTIO_F_RING_PACKED negotiated any size 1..maximum is accepted (§2.8)', () => {
  const t = setupVirtioPci({ queueMaxSize: 256 });
  const status = negotiate(t, featureMask(VirtioFeature.VERSION_1, VirtioFeature.RING_PACKED));
  assert.is(status, FULL_STATUS);
  t.common.write(C.QUEUE_SELECT, 2, 0);
  t.common.write(C.QUEUE_SIZE, 2, 100);
  assert.is(t.common.read(C.QUEUE_SIZE, 2), 100);
  t.common.write(C.QUEUE_SIZE, 2, 0);
  t.common.write(C.QUEUE_SIZE, 2, 257);
  assert.is(t.common.read(C.QUEUE_SIZE, 2), 100);
});

test('queue addresses are 64-bit fields written as two 32-bit halves', () => {
  const t = setupVirtioPci();
  t.common.write(C.QUEUE_SELECT, 2, 2);
  t.common.write(C.QUEUE_DESC_LO, 4, 0x89ab_c000);
  t.common.write(C.QUEUE_DESC_HI, 4, 0x1);
  t.common.write(C.QUEUE_DRIVER_LO, 4, 0x1000);
  t.common.write(C.QUEUE_DEVICE_HI, 4, 0x2);
  assert.is(t.common.read(C.QUEUE_DESC_LO, 4), 0x89ab_c000);
  assert.is(t.common.read(C.QUEUE_DESC_HI, 4), 1);
  assert.is(t.common.read(C.QUEUE_DRIVER_LO, 4), 0x1000);
  assert.is(t.common.read(C.QUEUE_DEVICE_HI, 4), 2);
  t.common.write(C.QUEUE_SELECT, 2, 0);
  assert.is(t.common.read(C.QUEUE_DESC_LO, 4), 0);
});

test('MSI-X vectors inside the table map; others read back NO_VECTOR (§4.1.5.1.2)', () => {
  const t = setupVirtioPci({ queueCount: 3 }); // 4 vectors
  t.common.write(C.CONFIG_MSIX_VECTOR, 2, 3);
  assert.is(t.common.read(C.CONFIG_MSIX_VECTOR, 2), 3);
  t.common.write(C.CONFIG_MSIX_VECTOR, 2, 4);
  assert.is(t.common.read(C.CONFIG_MSIX_VECTOR, 2), VIRTIO_MSI_NO_VECTOR);
  t.common.write(C.QUEUE_SELECT, 2, 1);
  assert.is(t.common.read(C.QUEUE_MSIX_VECTOR, 2), VIRTIO_MSI_NO_VECTOR);
  t.common.write(C.QUEUE_MSIX_VECTOR, 2, 2);
  assert.is(t.common.read(C.QUEUE_MSIX_VECTOR, 2), 2);
  t.common.write(C.QUEUE_MSIX_VECTOR, 2, 0x800);
  assert.is(t.common.read(C.QUEUE_MSIX_VECTOR, 2), VIRTIO_MSI_NO_VECTOR);
  t.common.write(C.QUEUE_MSIX_VECTOR, 2, 0);
  t.common.write(C.QUEUE_MSIX_VECTOR, 2, VIRTIO_MSI_NO_VECTOR); // unmapping
  assert.is(t.common.read(C.QUEUE_MSIX_VECTOR, 2), VIRTIO_MSI_NO_VECTOR);
});

test('device-specific configuration passes through at every width; outside it reads 0', () => {
  const t = setupVirtioPci({ configSize: 12 });
  assert.is(t.guest.read(t.s.device, 1), 0x10);
  assert.is(t.guest.read(t.s.device + 6, 2), 0x1716);
  assert.is(t.guest.read(t.s.device + 8, 4), 0x1b1a1918);
  assert.is(t.guest.read(t.s.device + 10, 4), 0); // runs past configSize
  assert.is(t.guest.read(t.s.device + 12, 1), 0);
  t.guest.write(t.s.device + 4, 2, 0xbeef);
  t.guest.write(t.s.device + 11, 2, 0xbeef);
  assert.equal(t.fake.configWrites, [[4, 2, 0xbeef]]);
});

test.run();
