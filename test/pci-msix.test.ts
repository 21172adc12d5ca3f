// MSI-X (PCI 3.0 §6.8.2) on a virtio-pci function: queue and config
// interrupts to their vectors (virtio 1.2 §4.1.5), enable and Function Mask,
// per-vector mask with pending bits, delivery on unmask, table access rules.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VIRTIO_MSI_NO_VECTOR, VirtioFeature, VirtioPciCommonCfg as C, featureMask } from 'virtio-spec-types';
import { driverOk, enableMsix, negotiate, setupQueue, setupVirtioPci, type VirtioPciSetup } from './support/virtio-pci-guest';

interface Msix {
  t: VirtioPciSetup;
  cap: number;
  table: number;
  pba: number;
}

/** A running device with vectors 0..3 programmed, queues 0 and 2 on vectors 1 and 2, config on 0. */
function running(): Msix {
  const t = setupVirtioPci({ queueCount: 3 });
  const cap = t.guest.capabilityList(t.slot).find(([, id]) => id === 0x11)?.[0] ?? 0;
  const bar = t.guest.barAddress(t.slot, 0);
  negotiate(t, featureMask(VirtioFeature.VERSION_1));
  enableMsix(t, 4);
  t.common.write(C.CONFIG_MSIX_VECTOR, 2, 0);
  setupQueue(t, 0, { desc: 0x1000, driver: 0x2000, device: 0x3000, vector: 1 });
  setupQueue(t, 2, { desc: 0x4000, driver: 0x5000, device: 0x6000, vector: 2 });
  driverOk(t);
  return { t, cap, table: bar + t.vpci.layout.msixTable.offset, pba: bar + t.vpci.layout.msixPba.offset };
}

const message = (v: number) => ({ address: 0xfee0_0000 + (v << 12), data: 0x4000 + v });

test('queue interrupts go to the queue vector, config changes to config_msix_vector', () => {
  const { t } = running();
  t.fake.ctx?.signalUsed(2);
  t.fake.ctx?.signalUsed(0);
  t.fake.ctx?.signalConfig();
  assert.equal(t.sink.msis, [message(2), message(1), message(0)]);
  assert.equal(t.sink.levels, []);
});

test('an event mapped to NO_VECTOR sends nothing (§4.1.5.2.1)', () => {
  const { t } = running();
  t.common.write(C.QUEUE_SELECT, 2, 2);
  t.common.write(C.QUEUE_MSIX_VECTOR, 2, VIRTIO_MSI_NO_VECTOR);
  t.common.write(C.CONFIG_MSIX_VECTOR, 2, VIRTIO_MSI_NO_VECTOR);
  t.fake.ctx?.signalUsed(2);
  t.fake.ctx?.signalConfig();
  assert.equal(t.sink.msis, []);
});

test('a masked vector sets its pending bit; unmasking sends the message and clears it', () => {
  const { t, table, pba } = running();
  t.guest.write(table + 16 * 2 + 12, 4, 1);
  t.fake.ctx?.signalUsed(2);
  t.fake.ctx?.signalUsed(2);
  assert.equal(t.sink.msis, []);
  assert.is(t.guest.read(pba, 4), 1 << 2);
  assert.is(t.guest.read(pba, 8), 1 << 2);
  // re-aim the vector while masked: the pending message goes to the new address
  t.guest.write(table + 16 * 2, 4, 0xfee0_1000);
  t.guest.write(table + 16 * 2 + 12, 4, 0);
  assert.equal(t.sink.msis, [{ address: 0xfee0_1000, data: 0x4002 }]);
  assert.is(t.guest.read(pba, 4), 0);
});

test('Function Mask holds every vector pending until it is cleared', () => {
  const { t, cap, pba } = running();
  t.guest.cfgWrite(t.slot, cap + 2, 2, 0xc000);
  t.fake.ctx?.signalUsed(0);
  t.fake.ctx?.signalConfig();
  assert.equal(t.sink.msis, []);
  assert.is(t.guest.read(pba, 4), 0b11);
  t.guest.cfgWrite(t.slot, cap + 2, 2, 0x8000);
  assert.equal(t.sink.msis, [message(0), message(1)]);
  assert.is(t.guest.read(pba, 4), 0);
});

test('MSI-X control: only Enable and Function Mask are writable', () => {
  const { t, cap } = running();
  t.guest.cfgWrite(t.slot, cap + 2, 2, 0xffff);
  assert.is(t.guest.cfgRead(t.slot, cap + 2, 2), 0xc000 | 3);
  t.guest.cfgWrite(t.slot, cap + 4, 4, 0xffffffff); // table offset/BIR is read-only
  assert.is(t.guest.cfgRead(t.slot, cap + 4, 4), t.vpci.layout.msixTable.offset);
});

test('table entries start masked; address bits 1:0 and control bits 31:1 read 0; QWORD writes work', () => {
  const t = setupVirtioPci({ queueCount: 3 });
  const table = t.guest.barAddress(t.slot, 0) + t.vpci.layout.msixTable.offset;
  for (let v = 0; v < 4; v++) assert.is(t.guest.read(table + 16 * v + 12, 4), 1);
  t.guest.write(table, 4, 0xfee0_0003);
  assert.is(t.guest.read(table, 4), 0xfee0_0000);
  t.guest.write(table + 12, 4, 0xffff_fffe);
  assert.is(t.guest.read(table + 12, 4), 0);
  t.guest.write(table + 16, 8, 0x1_fee0_2000);
  assert.is(t.guest.read(table + 16, 4), 0xfee0_2000);
  assert.is(t.guest.read(table + 20, 4), 1);
  // non-DWORD accesses are ignored / read 0
  t.guest.write(table + 32, 2, 0xffff);
  assert.is(t.guest.read(table + 32, 4), 0);
  assert.is(t.guest.read(table + 16, 2), 0);
  assert.is(t.guest.read(table + 17, 4), 0);
});

test('with MSI-X disabled nothing is sent or marked pending; the PBA is read-only', () => {
  const { t, cap, pba } = running();
  t.guest.cfgWrite(t.slot, cap + 2, 2, 0);
  t.fake.ctx?.signalUsed(0);
  assert.equal(t.sink.msis, []);
  assert.is(t.guest.read(pba, 4), 0);
  assert.is(t.sink.level, true); // INTx took over
  t.guest.write(pba, 4, 0xffffffff);
  assert.is(t.guest.read(pba, 4), 0);
});

test('listeners hear about table and control changes (for irqfd routing)', () => {
  const { t, table, cap } = running();
  const seen: string[] = [];
  t.vpci.msix.addListener({ vectorChanged: (v) => seen.push(`v${v}`), controlChanged: () => seen.push('ctl') });
  t.guest.write(table + 16 * 3 + 8, 4, 0x99);
  t.guest.write(table + 16 * 3 + 8, 4, 0x99); // unchanged: no event
  t.guest.cfgWrite(t.slot, cap + 2, 2, 0xc000);
  assert.equal(seen, ['v3', 'ctl']);
  assert.equal(t.vpci.msix.message(3), { address: 0xfee0_3000, data: 0x99, masked: false });
});

test.run();
