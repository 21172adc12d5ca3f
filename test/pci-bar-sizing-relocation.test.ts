// BAR size probing (PCI 3.0 §6.2.5.1: write all-ones, read back the size
// mask), BAR placement in the VMM's windows, and the bus following the guest
// when it moves a BAR or turns decoding off.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { BarMapEvent } from '../src/pci/pci-bus';
import { PciBus } from '../src/pci/pci-bus';
import { PciHeader } from '../src/pci/config-header';
import { PciFunction } from '../src/pci/pci-function';
import type { PciBarRegion } from '../src/pci/bar';
import { MMIO32, PciGuest, setupVirtioPci } from './support/virtio-pci-guest';

/** A BAR whose contents are a byte array, to see which BAR an access reached. */
function ramRegion(size: number, fill: number): PciBarRegion & { bytes: Uint8Array } {
  const bytes = new Uint8Array(size).fill(fill);
  return {
    bytes,
    read: (o, s) => {
      let v = 0;
      for (let i = s - 1; i >= 0; i--) v = v * 256 + (bytes[o + i] ?? 0);
      return v;
    },
    write: (o, s, v) => {
      for (let i = 0; i < s; i++) bytes[o + i] = (v >>> (8 * i)) & 0xff;
    },
  };
}

function testFunction(): PciFunction {
  return new PciFunction({ vendorId: 0x1234, deviceId: 0x11, classCode: { base: 0xff, sub: 0 } }, [
    { index: 0, kind: 'memory32', size: 0x1000, region: ramRegion(0x1000, 0xa0) },
    { index: 1, kind: 'io', size: 0x20, region: ramRegion(0x20, 0xb0) },
    { index: 2, kind: 'memory64', size: 0x10_0000, prefetchable: true, region: ramRegion(0x10_0000, 0xc0) },
  ]);
}

test('probing a 64-bit BAR: all-ones read back as the size mask in both halves, flags kept', () => {
  const { guest, slot, vpci } = setupVirtioPci();
  const size = vpci.layout.barSize;
  guest.cfgWrite(slot, PciHeader.COMMAND, 2, 0); // as Linux does while sizing
  const lo = guest.cfgRead(slot, PciHeader.BAR0, 4);
  const hi = guest.cfgRead(slot, PciHeader.BAR0 + 4, 4);
  guest.cfgWrite(slot, PciHeader.BAR0, 4, 0xffffffff);
  guest.cfgWrite(slot, PciHeader.BAR0 + 4, 4, 0xffffffff);
  const maskLo = guest.cfgRead(slot, PciHeader.BAR0, 4);
  const maskHi = guest.cfgRead(slot, PciHeader.BAR0 + 4, 4);
  assert.is(maskLo, ((~(size - 1) & 0xfffffff0) | 0x4) >>> 0);
  assert.is(maskHi, 0xffffffff);
  // what Linux's pci_size() computes: the lowest set address bit
  assert.is((~(maskLo & 0xfffffff0) + 1) >>> 0, size);
  guest.cfgWrite(slot, PciHeader.BAR0, 4, lo);
  guest.cfgWrite(slot, PciHeader.BAR0 + 4, 4, hi);
  assert.is(guest.cfgRead(slot, PciHeader.BAR0, 4), lo);
});

test('probing 32-bit memory and I/O BARs', () => {
  const bus = new PciBus({ mmio32: MMIO32, io: { base: 0x1000, size: 0x1000 } });
  const { device } = bus.add(testFunction());
  const guest = new PciGuest(bus);
  guest.cfgWrite(device, PciHeader.BAR0, 4, 0xffffffff);
  assert.is(guest.cfgRead(device, PciHeader.BAR0, 4), 0xfffff000);
  guest.cfgWrite(device, PciHeader.BAR0 + 4, 4, 0xffffffff);
  assert.is(guest.cfgRead(device, PciHeader.BAR0 + 4, 4), 0xffffffe1); // size 0x20, I/O flag
  guest.cfgWrite(device, PciHeader.BAR0 + 8, 4, 0xffffffff);
  assert.is(guest.cfgRead(device, PciHeader.BAR0 + 8, 4), 0xfff0000c); // 64-bit, prefetchable
  // partial (byte) writes merge into the register
  guest.cfgWrite(device, PciHeader.BAR0 + 3, 1, 0x12);
  assert.is(guest.cfgRead(device, PciHeader.BAR0, 4), 0x12fff000);
});

test('the bus places BARs size-aligned inside the windows and enables decoding', () => {
  const bus = new PciBus({ mmio32: MMIO32, io: { base: 0x1000, size: 0x1000 } });
  const fn = testFunction();
  const { device } = bus.add(fn);
  const guest = new PciGuest(bus);
  const bar0 = (guest.cfgRead(device, PciHeader.BAR0, 4) & ~0xf) >>> 0;
  const bar1 = guest.cfgRead(device, PciHeader.BAR0 + 4, 4) & ~0x3;
  const bar2 = guest.barAddress(device, 2);
  assert.ok(bar0 >= MMIO32.base && bar0 + 0x1000 <= MMIO32.base + MMIO32.size && bar0 % 0x1000 === 0);
  assert.ok(bar2 >= MMIO32.base && bar2 % 0x10_0000 === 0);
  assert.ok(bar1 >= 0x1000 && bar1 < 0x2000 && bar1 % 0x20 === 0);
  assert.is(guest.cfgRead(device, PciHeader.COMMAND, 2) & 3, 3);
  assert.is(guest.read(bar0 + 4, 4), 0xa0a0a0a0);
  assert.is(guest.in(bar1 + 2, 2), 0xb0b0);
  assert.is(guest.read(bar2 + 0xffff8, 8), 0xc0c0c0c0 * 0x1_0000_0000 + 0xc0c0c0c0);
  assert.is(bus.barAddress(fn, 2), bar2);
});

test('a guest-moved BAR decodes at its new address only; listeners hear about it', () => {
  const { guest, slot, bus, vpci, s } = setupVirtioPci();
  const events: BarMapEvent[] = [];
  bus.onBarMap((e) => events.push(e));
  const old = guest.barAddress(slot, 0);
  const moved = 0xd000_0000;
  guest.cfgWrite(slot, PciHeader.BAR0, 4, moved);
  assert.equal(
    events.map((e) => [e.bar, e.previous, e.current]),
    [[0, old, moved]],
  );
  assert.is(guest.read(s.common + 20, 1), undefined); // old address no longer decodes
  assert.is(guest.read(moved + vpci.layout.common.offset + 18, 2), 3); // num_queues at the new one
  assert.is(bus.barAddress(vpci.pci, 0), moved);
  // high half moves it above 4 GiB
  guest.cfgWrite(slot, PciHeader.BAR0 + 4, 4, 0x10);
  assert.is(events[events.length - 1]?.current, 0x10_d000_0000);
  assert.is(guest.read(0x10_d000_0000 + 18, 2), 3);
});

test('clearing Memory Space Enable stops decoding; setting it restores the mapping', () => {
  const { guest, slot, s } = setupVirtioPci();
  assert.is(guest.read(s.common + 18, 2), 3);
  guest.cfgWrite(slot, PciHeader.COMMAND, 2, 0);
  assert.is(guest.read(s.common + 18, 2), undefined);
  assert.not.ok(guest.write(s.common + 20, 1, 1));
  guest.cfgWrite(slot, PciHeader.COMMAND, 2, 2);
  assert.is(guest.read(s.common + 18, 2), 3);
  assert.is(guest.read(s.common + 20, 1), 0);
});

test('a BAR moved beyond the physical address space decodes nothing', () => {
  const { guest, slot, bus, vpci } = setupVirtioPci();
  guest.cfgWrite(slot, PciHeader.BAR0 + 4, 4, 0xffffffff);
  assert.is(bus.barAddress(vpci.pci, 0), undefined);
});

test('accesses outside every BAR are not claimed', () => {
  const { guest } = setupVirtioPci();
  assert.is(guest.read(0x1000, 4), undefined);
  assert.not.ok(guest.write(MMIO32.base + MMIO32.size - 4, 4, 0));
});

test('windows that cannot hold the BARs are a set-up error', () => {
  const bus = new PciBus({ mmio32: { base: 0xc000_0000, size: 0x1000 } });
  assert.throws(() => bus.add(testFunction()), /pci\.(mmio32|io)/);
  assert.throws(() => new PciBus({ mmio32: { base: 0xffff_0000, size: 0x2_0000 } }), /below 4 GiB/);
});

test.run();
