// Walking the capability list from 0x34 as a driver does (PCI 3.0 §6.7)
// finds every virtio structure (virtio 1.2 §4.1.4) and the MSI-X capability.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VirtioPciCap, VirtioPciCapType, VirtioPciCommonCfg, VirtioPciNotifyCap } from 'virtio-spec-types';
import { PciHeader } from '../src/pci/config-header';
import { setupVirtioPci } from './support/virtio-pci-guest';

test('the list starts at 0x34, is DWORD aligned, ends with next 0 and has no loops', () => {
  const { guest, slot } = setupVirtioPci();
  const caps = guest.capabilityList(slot);
  assert.ok(caps.length >= 6 && caps.length < 48);
  const offsets = caps.map(([at]) => at);
  assert.is(new Set(offsets).size, offsets.length);
  for (const at of offsets) {
    assert.is(at % 4, 0);
    assert.ok(at >= 0x40 && at < 0x100);
  }
  assert.is(guest.cfgRead(slot, PciHeader.CAPABILITIES_POINTER, 1), offsets[0]);
  const last = offsets[offsets.length - 1] ?? 0;
  assert.is(guest.cfgRead(slot, last + 1, 1), 0);
});

test('vendor capabilities describe COMMON, NOTIFY, ISR, DEVICE and PCI_CFG inside BAR 0', () => {
  const { guest, slot, fake, vpci } = setupVirtioPci();
  const byType = new Map<number, { at: number; bar: number; offset: number; length: number; capLen: number }>();
  for (const [at, id] of guest.capabilityList(slot)) {
    if (id !== 0x09) continue;
    byType.set(guest.cfgRead(slot, at + VirtioPciCap.CFG_TYPE, 1), {
      at,
      bar: guest.cfgRead(slot, at + VirtioPciCap.BAR, 1),
      offset: guest.cfgRead(slot, at + VirtioPciCap.OFFSET, 4),
      length: guest.cfgRead(slot, at + VirtioPciCap.LENGTH, 4),
      capLen: guest.cfgRead(slot, at + VirtioPciCap.CAP_LEN, 1),
    });
  }
  const barSize = vpci.layout.barSize;
  for (const type of [VirtioPciCapType.COMMON_CFG, VirtioPciCapType.NOTIFY_CFG, VirtioPciCapType.ISR_CFG, VirtioPciCapType.DEVICE_CFG]) {
    const c = byType.get(type);
    assert.ok(c, `cfg_type ${type} present`);
    if (!c) continue;
    assert.is(c.bar, 0);
    assert.ok(c.offset + c.length <= barSize, `cfg_type ${type} inside the BAR`);
  }
  assert.is(byType.get(VirtioPciCapType.COMMON_CFG)?.length, VirtioPciCommonCfg.SIZE);
  assert.is(byType.get(VirtioPciCapType.COMMON_CFG)?.offset ?? 1, 0); // §4.1.4.3: 4-byte aligned
  assert.is(byType.get(VirtioPciCapType.ISR_CFG)?.length, 1);
  assert.is(byType.get(VirtioPciCapType.DEVICE_CFG)?.length, fake.configSize);
  assert.is(byType.get(VirtioPciCapType.COMMON_CFG)?.capLen, 16);
  const notify = byType.get(VirtioPciCapType.NOTIFY_CFG);
  assert.is(notify?.capLen, 20);
  const multiplier = guest.cfgRead(slot, (notify?.at ?? 0) + VirtioPciNotifyCap.NOTIFY_OFF_MULTIPLIER, 4);
  assert.is(multiplier, 4);
  // §4.1.4.4: length >= queue_notify_off * multiplier + 2 for every queue
  assert.ok((notify?.length ?? 0) >= (fake.queueCount - 1) * multiplier + 2);
  assert.is(byType.get(VirtioPciCapType.PCI_CFG)?.capLen, 20);
});

test('BAR 0 is a 64-bit non-prefetchable memory BAR', () => {
  const { guest, slot } = setupVirtioPci();
  const low = guest.cfgRead(slot, PciHeader.BAR0, 4);
  assert.is(low & 0x1, 0); // memory
  assert.is(low & 0x6, 0x4); // 64-bit
  assert.is(low & 0x8, 0); // not prefetchable: ISR reads have side effects
});

test('MSI-X capability: table size N-1, table and PBA in BAR 0 at QWORD offsets', () => {
  const { guest, slot, vpci, fake } = setupVirtioPci();
  const msix = guest.capabilityList(slot).find(([, id]) => id === 0x11);
  assert.ok(msix);
  const at = msix?.[0] ?? 0;
  const control = guest.cfgRead(slot, at + 2, 2);
  assert.is((control & 0x7ff) + 1, fake.queueCount + 1);
  assert.is(control & 0xc000, 0); // disabled, unmasked at reset
  const table = guest.cfgRead(slot, at + 4, 4);
  const pba = guest.cfgRead(slot, at + 8, 4);
  assert.is(table & 7, 0);
  assert.is(pba & 7, 0);
  assert.is(table & ~7, vpci.layout.msixTable.offset);
  assert.is(pba & ~7, vpci.layout.msixPba.offset);
});

test('a device without device-specific configuration has no DEVICE_CFG capability', () => {
  const { s } = setupVirtioPci({ configSize: 0 });
  assert.is(s.device, -1);
  assert.ok(s.common > 0 && s.notify > 0 && s.isr > 0);
});

test.run();
