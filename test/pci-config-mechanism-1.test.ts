// Configuration mechanism #1 (PCI 3.0 §3.2.2.3.2): CONFIG_ADDRESS at 0xCF8
// (DWORD only), CONFIG_DATA at 0xCFC-0xCFF with byte, word and DWORD lanes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PciHeader } from '../src/pci/config-header';
import { PciBus } from '../src/pci/pci-bus';
import { PciFunction } from '../src/pci/pci-function';
import { MMIO32, PciGuest, setupVirtioPci } from './support/virtio-pci-guest';

test('CONFIG_ADDRESS reads back what was written, reserved bits 30:24 and 1:0 as 0', () => {
  const { guest } = setupVirtioPci();
  guest.outl(0xcf8, 0x8000_0000);
  assert.is(guest.in(0xcf8, 4), 0x8000_0000); // Linux's pci_check_type1
  guest.outl(0xcf8, 0xffff_ffff);
  assert.is(guest.in(0xcf8, 4), 0x80ff_fffc);
});

test('non-DWORD accesses to 0xCF8-0xCFB are left to the VMM (0xCF9 is reset control)', () => {
  const { guest, bus } = setupVirtioPci();
  assert.is(guest.in(0xcf8, 1), undefined);
  assert.is(guest.in(0xcfa, 2), undefined);
  assert.not.ok(guest.out(0xcf9, 1, 0x06));
  assert.not.ok(bus.pioRead(0xcf9, new Uint8Array(4)));
});

test('every width and lane of CONFIG_DATA reads the right bytes', () => {
  const { guest, slot } = setupVirtioPci();
  const dword = guest.cfgRead(slot, 0, 4); // 0x10411af4
  assert.is(dword, 0x1041_1af4);
  guest.outl(0xcf8, 0x8000_0000 | (slot << 11));
  assert.is(guest.in(0xcfc, 1), 0xf4);
  assert.is(guest.in(0xcfd, 1), 0x1a);
  assert.is(guest.in(0xcfe, 1), 0x41);
  assert.is(guest.in(0xcff, 1), 0x10);
  assert.is(guest.in(0xcfc, 2), 0x1af4);
  assert.is(guest.in(0xcfd, 2), 0x411a);
  assert.is(guest.in(0xcfe, 2), 0x1041);
  assert.is(guest.in(0xcfc, 4), 0x1041_1af4);
  assert.is(guest.in(0xcff, 2), 0xffff); // runs past the DWORD
  assert.is(guest.in(0xcfd, 4), 0xffffffff);
});

test('every width and lane of CONFIG_DATA writes the right bytes', () => {
  const { guest, slot } = setupVirtioPci();
  guest.outl(0xcf8, 0x8000_0000 | (slot << 11) | PciHeader.INTERRUPT_LINE);
  guest.out(0xcfc, 1, 0x07); // interrupt line
  assert.is(guest.cfgRead(slot, PciHeader.INTERRUPT_LINE, 1), 7);
  guest.outl(0xcf8, 0x8000_0000 | (slot << 11) | PciHeader.COMMAND);
  guest.out(0xcfd, 1, 0x04); // interrupt disable, byte lane 1
  assert.is(guest.cfgRead(slot, PciHeader.COMMAND, 2), 0x0402);
  guest.out(0xcfc, 2, 0x0006);
  assert.is(guest.cfgRead(slot, PciHeader.COMMAND, 2), 0x0006);
  guest.outl(0xcf8, 0x8000_0000 | (slot << 11) | PciHeader.CACHE_LINE_SIZE);
  guest.out(0xcfc, 4, 0xffff_ff20);
  assert.is(guest.cfgRead(slot, PciHeader.CACHE_LINE_SIZE, 1), 0x20);
  assert.is(guest.cfgRead(slot, PciHeader.HEADER_TYPE, 1), 0);
});

test('with the enable bit clear, data reads are all-ones and writes do nothing', () => {
  const { guest, slot } = setupVirtioPci();
  guest.outl(0xcf8, (slot << 11) | PciHeader.INTERRUPT_LINE);
  assert.is(guest.in(0xcfc, 4), 0xffffffff);
  guest.out(0xcfc, 1, 3);
  assert.is(guest.cfgRead(slot, PciHeader.INTERRUPT_LINE, 1), 11);
});

test('absent devices, functions and buses read all-ones (master abort)', () => {
  const { guest } = setupVirtioPci();
  assert.is(guest.cfgRead(30, 0, 4), 0xffffffff);
  assert.is(guest.cfgRead(30, 0, 2), 0xffff);
  assert.is(guest.cfgRead(30, 2, 1), 0xff);
  assert.is(guest.cfgRead(1, 0, 4, 3), 0xffffffff);
  guest.outl(0xcf8, 0x8001_0800); // bus 1
  assert.is(guest.in(0xcfc, 4), 0xffffffff);
});

test('a host bridge sits at 00:00.0 (Linux only trusts conf1 if it finds one)', () => {
  const { guest } = setupVirtioPci();
  assert.is(guest.cfgRead(0, PciHeader.CLASS, 1), 0x06);
  assert.is(guest.cfgRead(0, PciHeader.SUBCLASS, 1), 0x00);
  assert.ok(guest.cfgRead(0, PciHeader.VENDOR_ID, 2) !== 0xffff);
  const bus = new PciBus({ mmio32: MMIO32, hostBridge: false });
  assert.is(new PciGuest(bus).cfgRead(0, 0, 4), 0xffffffff);
});

test('functions 1-7 of a slot make function 0 multi-function; they answer at their number', () => {
  const bus = new PciBus({ mmio32: MMIO32 });
  const f0 = new PciFunction({ vendorId: 0x1234, deviceId: 0x10, classCode: { base: 0xff, sub: 0 } });
  const f3 = new PciFunction({ vendorId: 0x1234, deviceId: 0x13, classCode: { base: 0xff, sub: 0 } });
  bus.add(f0, { device: 5 });
  assert.throws(() => bus.add(f3, { device: 6, function: 3 }), /function 0/);
  bus.add(f3, { device: 5, function: 3 });
  const guest = new PciGuest(bus);
  assert.is(guest.cfgRead(5, PciHeader.HEADER_TYPE, 1), 0x80);
  assert.is(guest.cfgRead(5, PciHeader.DEVICE_ID, 2, 3), 0x13);
  assert.is(guest.cfgRead(5, PciHeader.DEVICE_ID, 2, 1), 0xffff);
  assert.throws(() => bus.add(f0, { device: 7 }), /already attached/);
  assert.throws(() => bus.add(new PciFunction({ vendorId: 1, deviceId: 1, classCode: { base: 0, sub: 0 } }), { device: 5 }), /in use/);
});

test.run();
