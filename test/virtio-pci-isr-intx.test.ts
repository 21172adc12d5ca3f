// ISR status and INTx (virtio 1.2 §4.1.4.5, §4.1.5.3/4): bits set per
// notification while MSI-X is off, read-to-clear, the pin following ISR
// through the command register's Interrupt Disable, and no INTx with MSI-X.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VirtioFeature, featureMask } from 'virtio-spec-types';
import { PciCommand, PciHeader, PciStatus } from '../src/pci/config-header';
import { driverOk, enableMsix, negotiate, setupQueue, setupVirtioPci, type VirtioPciSetup } from './support/virtio-pci-guest';

function running(): VirtioPciSetup {
  const t = setupVirtioPci();
  negotiate(t, featureMask(VirtioFeature.VERSION_1));
  setupQueue(t, 0, { desc: 0x1000, driver: 0x2000, device: 0x3000 });
  driverOk(t);
  return t;
}

test('a used-buffer notification sets ISR bit 0 and asserts INTx; reading ISR clears both', () => {
  const t = running();
  t.fake.ctx?.signalUsed(0);
  assert.is(t.sink.level, true);
  assert.ok(t.guest.cfgRead(t.slot, PciHeader.STATUS, 2) & PciStatus.INTERRUPT);
  assert.is(t.guest.read(t.s.isr, 1), 1);
  assert.is(t.sink.level, false);
  assert.not.ok(t.guest.cfgRead(t.slot, PciHeader.STATUS, 2) & PciStatus.INTERRUPT);
  assert.is(t.guest.read(t.s.isr, 1), 0);
  assert.equal(t.sink.levels, [true, false]);
});

test('a configuration change sets ISR bit 1; both bits accumulate until read', () => {
  const t = running();
  t.fake.ctx?.signalConfig();
  t.fake.ctx?.signalUsed(0);
  t.fake.ctx?.signalUsed(0);
  assert.equal(t.sink.levels, [true]);
  assert.is(t.guest.read(t.s.isr, 1), 3);
  assert.equal(t.sink.levels, [true, false]);
});

test('ISR reads of other widths return 0 without clearing; writes are ignored', () => {
  const t = running();
  t.fake.ctx?.signalUsed(0);
  t.guest.write(t.s.isr, 1, 0);
  assert.is(t.guest.read(t.s.isr, 4), 0);
  assert.is(t.guest.read(t.s.isr, 2), 0);
  assert.is(t.sink.level, true);
  assert.is(t.guest.read(t.s.isr, 1), 1);
});

test('Interrupt Disable masks the pin, not the ISR or the status bit', () => {
  const t = running();
  t.guest.cfgWrite(t.slot, PciHeader.COMMAND, 2, PciCommand.MEMORY_SPACE | PciCommand.INTERRUPT_DISABLE);
  t.fake.ctx?.signalUsed(0);
  assert.is(t.sink.level, false);
  assert.ok(t.guest.cfgRead(t.slot, PciHeader.STATUS, 2) & PciStatus.INTERRUPT);
  t.guest.cfgWrite(t.slot, PciHeader.COMMAND, 2, PciCommand.MEMORY_SPACE);
  assert.is(t.sink.level, true);
  assert.is(t.guest.read(t.s.isr, 1), 1);
  assert.is(t.sink.level, false);
});

test('with MSI-X enabled, queue notifications use no ISR bit and no INTx', () => {
  const t = running();
  t.fake.ctx?.signalUsed(0);
  assert.is(t.sink.level, true);
  enableMsix(t, 2); // enabling MSI-X takes the function off INTx
  assert.is(t.sink.level, false);
  assert.is(t.guest.read(t.s.isr, 1), 1);
  t.fake.ctx?.signalUsed(0);
  assert.is(t.guest.read(t.s.isr, 1), 0);
  assert.is(t.sink.level, false);
  // the config bit is still set (§4.1.4.5.1) but INTx stays quiet
  t.fake.ctx?.signalConfig();
  assert.is(t.sink.level, false);
  assert.is(t.guest.read(t.s.isr, 1), 2);
});

test.run();
