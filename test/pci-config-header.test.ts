// The type-0 header of a virtio-net function as a guest reads it, and which
// bits its writes can change (PCI 3.0 §6.1-§6.2, virtio 1.2 §4.1.2).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PciHeader, PciStatus } from '../src/pci/config-header';
import { PciFunction } from '../src/pci/pci-function';
import { setupVirtioPci } from './support/virtio-pci-guest';

test('identity registers follow §4.1.2: vendor 0x1af4, device 0x1041, revision 1, subsystem >= 0x40, network class', () => {
  const { guest, slot } = setupVirtioPci();
  assert.is(guest.cfgRead(slot, PciHeader.VENDOR_ID, 2), 0x1af4);
  assert.is(guest.cfgRead(slot, PciHeader.DEVICE_ID, 2), 0x1041);
  assert.is(guest.cfgRead(slot, PciHeader.REVISION_ID, 1), 1);
  assert.is(guest.cfgRead(slot, PciHeader.CLASS, 1), 0x02);
  assert.is(guest.cfgRead(slot, PciHeader.SUBCLASS, 1), 0x00);
  assert.is(guest.cfgRead(slot, PciHeader.PROG_IF, 1), 0x00);
  assert.is(guest.cfgRead(slot, PciHeader.SUBSYSTEM_VENDOR_ID, 2), 0x1af4);
  assert.ok(guest.cfgRead(slot, PciHeader.SUBSYSTEM_ID, 2) >= 0x40);
  assert.is(guest.cfgRead(slot, PciHeader.HEADER_TYPE, 1), 0x00);
  assert.is(guest.cfgRead(slot, PciHeader.INTERRUPT_PIN, 1), 1);
  assert.is(guest.cfgRead(slot, PciHeader.INTERRUPT_LINE, 1), 11);
  assert.is(guest.cfgRead(slot, PciHeader.VENDOR_ID, 4), 0x1041_1af4);
});

test('read-only identity registers ignore writes', () => {
  const { guest, slot } = setupVirtioPci();
  for (const [offset, size] of [
    [PciHeader.VENDOR_ID, 4],
    [PciHeader.REVISION_ID, 4],
    [PciHeader.SUBSYSTEM_VENDOR_ID, 4],
    [PciHeader.CAPABILITIES_POINTER, 1],
    [PciHeader.INTERRUPT_PIN, 1],
    [PciHeader.HEADER_TYPE, 1],
  ] as const) {
    const before = guest.cfgRead(slot, offset, size);
    guest.cfgWrite(slot, offset, size, 0x5a5a5a5a);
    assert.is(guest.cfgRead(slot, offset, size), before, `offset 0x${offset.toString(16)}`);
  }
});

test('command register: only implemented enables are writable', () => {
  const { guest, slot } = setupVirtioPci();
  guest.cfgWrite(slot, PciHeader.COMMAND, 2, 0xffff);
  // memory space, bus master, parity, SERR, interrupt disable; no I/O space (no I/O BAR)
  assert.is(guest.cfgRead(slot, PciHeader.COMMAND, 2), 0x0002 | 0x0004 | 0x0040 | 0x0100 | 0x0400);
  guest.cfgWrite(slot, PciHeader.COMMAND, 2, 0);
  assert.is(guest.cfgRead(slot, PciHeader.COMMAND, 2), 0);
});

test('status register: capability list bit set, read-only bits ignore writes', () => {
  const { guest, slot } = setupVirtioPci();
  const status = guest.cfgRead(slot, PciHeader.STATUS, 2);
  assert.ok(status & PciStatus.CAPABILITIES_LIST);
  guest.cfgWrite(slot, PciHeader.STATUS, 2, 0xffff); // W1C bits are 0 already; RO bits stay
  assert.is(guest.cfgRead(slot, PciHeader.STATUS, 2), status);
  // a DWORD write at COMMAND also reaches STATUS: still only W1C there
  guest.cfgWrite(slot, PciHeader.COMMAND, 4, 0xffff_0002);
  assert.is(guest.cfgRead(slot, PciHeader.STATUS, 2), status);
  assert.is(guest.cfgRead(slot, PciHeader.COMMAND, 2), 0x0002);
});

test('status error bits are write-one-to-clear', () => {
  const fn = new PciFunction({ vendorId: 1, deviceId: 2, classCode: { base: 0xff, sub: 0 } });
  fn.config.set16(PciHeader.STATUS, PciStatus.RECEIVED_MASTER_ABORT | PciStatus.SIGNALED_TARGET_ABORT);
  fn.configWrite(PciHeader.STATUS, 2, PciStatus.RECEIVED_MASTER_ABORT);
  assert.is(fn.configRead(PciHeader.STATUS, 2), PciStatus.SIGNALED_TARGET_ABORT);
  fn.configWrite(PciHeader.STATUS, 2, 0);
  assert.is(fn.configRead(PciHeader.STATUS, 2), PciStatus.SIGNALED_TARGET_ABORT);
});

test('interrupt line and cache line size are writable scratch registers', () => {
  const { guest, slot } = setupVirtioPci();
  guest.cfgWrite(slot, PciHeader.INTERRUPT_LINE, 1, 5);
  guest.cfgWrite(slot, PciHeader.CACHE_LINE_SIZE, 1, 0x10);
  assert.is(guest.cfgRead(slot, PciHeader.INTERRUPT_LINE, 1), 5);
  assert.is(guest.cfgRead(slot, PciHeader.CACHE_LINE_SIZE, 1), 0x10);
  assert.is(guest.cfgRead(slot, PciHeader.LATENCY_TIMER, 1), 0);
});

test('unimplemented BARs, expansion ROM and reserved header bytes read 0 and stay 0', () => {
  const { guest, slot } = setupVirtioPci();
  for (const offset of [0x18, 0x1c, 0x20, 0x24, PciHeader.EXPANSION_ROM, PciHeader.CARDBUS_CIS, 0x38]) {
    guest.cfgWrite(slot, offset, 4, 0xffffffff);
    assert.is(guest.cfgRead(slot, offset, 4), 0, `offset 0x${offset.toString(16)}`);
  }
  assert.is(guest.cfgRead(slot, 0x35, 1), 0);
  assert.is(guest.cfgRead(slot, 0xfc, 4), 0); // past the capabilities
});

test('malformed configuration accesses read 0 and are ignored instead of throwing', () => {
  const fn = new PciFunction({ vendorId: 0x1234, deviceId: 0x5678, classCode: { base: 0xff, sub: 0 } });
  assert.is(fn.configRead(0x03, 2), 0); // crosses a DWORD
  assert.is(fn.configRead(0x00, 3), 0);
  assert.is(fn.configRead(0x100, 4), 0);
  assert.is(fn.configRead(-4, 4), 0);
  assert.is(fn.configRead(1.5, 1), 0);
  fn.configWrite(0x3b, 2, 0xffff);
  fn.configWrite(0x3c, 8, 0xff);
  assert.is(fn.configRead(0x3c, 1), 0xff);
  assert.is(fn.configRead(0, 4), 0x5678_1234);
});

test.run();
