// The VIRTIO_PCI_CAP_PCI_CFG window (virtio 1.2 §4.1.4.9): BAR accesses
// through configuration space, for drivers that cannot map the BAR.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DeviceStatus, VirtioFeature, VirtioPciCap as Cap, VirtioPciCfgCap, VirtioPciCommonCfg as C, featureMask } from 'virtio-spec-types';
import { PciHeader } from '../src/pci/config-header';
import { driverOk, negotiate, setupQueue, setupVirtioPci, type VirtioPciSetup } from './support/virtio-pci-guest';

/** Points the window at (bar, offset, length). */
function aim(t: VirtioPciSetup, bar: number, offset: number, length: number): void {
  const at = t.s.pciCfgCap;
  t.guest.cfgWrite(t.slot, at + Cap.BAR, 1, bar);
  t.guest.cfgWrite(t.slot, at + Cap.OFFSET, 4, offset);
  t.guest.cfgWrite(t.slot, at + Cap.LENGTH, 4, length);
}

const data = (t: VirtioPciSetup) => t.s.pciCfgCap + VirtioPciCfgCap.PCI_CFG_DATA;
const bar0 = (t: VirtioPciSetup, address: number) => address - t.guest.barAddress(t.slot, 0);

test('cap.bar, cap.offset and cap.length read back as written', () => {
  const t = setupVirtioPci();
  aim(t, 0, 0x1234, 2);
  assert.is(t.guest.cfgRead(t.slot, t.s.pciCfgCap + Cap.BAR, 1), 0);
  assert.is(t.guest.cfgRead(t.slot, t.s.pciCfgCap + Cap.OFFSET, 4), 0x1234);
  assert.is(t.guest.cfgRead(t.slot, t.s.pciCfgCap + Cap.LENGTH, 4), 2);
  assert.is(t.guest.cfgRead(t.slot, t.s.pciCfgCap + Cap.CFG_TYPE, 1), 5);
});

test('reading pci_cfg_data performs the BAR read, even with memory decoding off', () => {
  const t = setupVirtioPci();
  t.guest.cfgWrite(t.slot, PciHeader.COMMAND, 2, 0);
  aim(t, 0, bar0(t, t.s.common) + C.NUM_QUEUES, 2);
  assert.is(t.guest.cfgRead(t.slot, data(t), 2), 3);
  assert.is(t.guest.cfgRead(t.slot, data(t), 4) & 0xffff, 3);
  aim(t, 0, bar0(t, t.s.device) + 4, 4);
  assert.is(t.guest.cfgRead(t.slot, data(t), 4), 0x17161514);
});

test('writing pci_cfg_data performs the BAR write: status, and a queue notify', () => {
  const t = setupVirtioPci();
  aim(t, 0, bar0(t, t.s.common) + C.DEVICE_STATUS, 1);
  t.guest.cfgWrite(t.slot, data(t), 1, DeviceStatus.ACKNOWLEDGE);
  assert.is(t.common.read(C.DEVICE_STATUS, 1), DeviceStatus.ACKNOWLEDGE);
  negotiate(t, featureMask(VirtioFeature.VERSION_1));
  setupQueue(t, 1, { desc: 0x1000, driver: 0x2000, device: 0x3000 });
  driverOk(t);
  aim(t, 0, bar0(t, t.s.notify) + t.s.notifyMultiplier, 2);
  t.guest.cfgWrite(t.slot, data(t), 4, 1);
  assert.equal(t.fake.notifies, [1]);
});

test('an ISR read through the window clears it', () => {
  const t = setupVirtioPci();
  negotiate(t, featureMask(VirtioFeature.VERSION_1));
  setupQueue(t, 0, { desc: 0x1000, driver: 0x2000, device: 0x3000 });
  driverOk(t);
  t.fake.ctx?.signalUsed(0);
  aim(t, 0, bar0(t, t.s.isr), 1);
  assert.is(t.guest.cfgRead(t.slot, data(t), 1), 1);
  assert.is(t.sink.level, false);
  assert.is(t.guest.cfgRead(t.slot, data(t), 1), 0);
});

test('illegal windows do nothing: bad length, misaligned offset, other BAR, MSI-X table, gaps', () => {
  const t = setupVirtioPci();
  const table = t.vpci.layout.msixTable.offset;
  t.guest.write(t.guest.barAddress(t.slot, 0) + table, 4, 0xfee0_0000);
  for (const [bar, offset, length] of [
    [0, bar0(t, t.s.common) + C.NUM_QUEUES, 3],
    [0, bar0(t, t.s.common) + C.NUM_QUEUES + 1, 2],
    [0, bar0(t, t.s.common) + C.DEVICE_STATUS, 8],
    [1, bar0(t, t.s.common) + C.NUM_QUEUES, 2],
    [7, bar0(t, t.s.common) + C.NUM_QUEUES, 2],
    [0, table, 4],
    [0, bar0(t, t.s.common) + 0x100, 4],
    [0, bar0(t, t.s.common) + C.SIZE - 2, 4],
  ] as const) {
    aim(t, bar, offset, length);
    assert.is(t.guest.cfgRead(t.slot, data(t), 4), 0, `${bar}/${offset}/${length}`);
    t.guest.cfgWrite(t.slot, data(t), 4, 0xffffffff);
  }
  assert.is(t.common.read(C.DEVICE_STATUS, 1), 0);
  assert.is(t.guest.read(t.guest.barAddress(t.slot, 0) + table, 4), 0xfee0_0000);
});

test.run();
