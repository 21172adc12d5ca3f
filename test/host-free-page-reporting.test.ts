// A kernel whose virtio balloon negotiated free page reporting hands its free
// 2 MiB blocks back to the hypervisor; the boot path's UMEM then takes 4 KiB
// pages, which fault in from memory the kernel still has (THP otherwise).
import * as assert from 'uvu/assert';
import { test } from 'uvu';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { bootMappingPages, reportsFreePages, virtioSysfsDevices } from '../src/host/free-page-reporting';

const features = (bits: number[]): string => Array.from({ length: 64 }, (_, i) => (bits.includes(i) ? '1' : '0')).join('');

test('a balloon with VIRTIO_BALLOON_F_REPORTING (bit 5) bound to virtio_balloon reports free pages', () => {
  assert.ok(reportsFreePages([{ device: 5, features: features([1, 2, 5]), driver: 'virtio_balloon' }]));
});

test('no reporting: the bit clear, another device with bit 5, or no driver bound', () => {
  assert.not.ok(reportsFreePages([{ device: 5, features: features([1, 2]), driver: 'virtio_balloon' }]));
  assert.not.ok(reportsFreePages([{ device: 1, features: features([5]), driver: 'virtio_net' }]));
  assert.not.ok(reportsFreePages([{ device: 5, features: features([5]), driver: undefined }]));
  assert.not.ok(reportsFreePages([]));
});

test('sysfs is read as the kernel lays it out: device id, features string, driver link', () => {
  const root = mkdtempSync(path.join(tmpdir(), 'virtio-sysfs-'));
  try {
    const dev = (name: string, id: string, feat: string, driver?: string): void => {
      const d = path.join(root, name);
      mkdirSync(d);
      writeFileSync(path.join(d, 'device'), `${id}\n`);
      writeFileSync(path.join(d, 'features'), `${feat}\n`);
      if (driver) symlinkSync(`../../../bus/virtio/drivers/${driver}`, path.join(d, 'driver'));
    };
    dev('virtio0', '0x0005', features([1, 2, 5, 7]), 'virtio_balloon');
    dev('virtio1', '0x0001', features([0, 5]), 'virtio_net');
    dev('virtio2', '0x0005', features([5])); // unbound
    mkdirSync(path.join(root, 'virtio3')); // half gone: skipped
    const found = virtioSysfsDevices(root).sort((a, b) => a.device - b.device || a.features.localeCompare(b.features));
    assert.equal(found.map((d) => [d.device, d.driver]), [[1, 'virtio_net'], [5, undefined], [5, 'virtio_balloon']]);
    assert.ok(reportsFreePages(found));
    assert.equal(virtioSysfsDevices(path.join(root, 'none')), []);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('this host: the UMEM page size follows its balloon', () => {
  const reporting = reportsFreePages(virtioSysfsDevices());
  assert.is(bootMappingPages(), reporting ? 'base' : 'thp');
  console.log(`# free page reporting: ${reporting ? 'on (UMEM in 4 KiB pages)' : 'off (UMEM in transparent huge pages)'}`);
});

test.run();
