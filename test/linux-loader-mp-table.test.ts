// The Intel MP 1.4 tables (MP spec ch. 4) for 1, 2, 4 and many vCPUs, found
// the way Linux finds them (arch/x86/kernel/mpparse.c: scan the last KiB of
// base memory, the EBDA, then 0xF0000-0xFFFFF for "_MP_" on 16-byte
// boundaries) and decoded here from the raw bytes: checksums, the processor
// entries (BSP flag on APIC 0 only), ISA and PCI buses, the I/O APIC at
// 0xFEC00000 with ID = cpus, and ISA IRQs 0-15 routed to its pins 0-15.
import * as assert from 'uvu/assert';
import { test } from 'uvu';
import { loadLinux } from '../src/vmm/loader/linux-loader';
import { guardedMemory, kernelFile, kernelTest, MIB, u16, u32 } from './support/linux-loader-rig';

const sum = (b: Uint8Array): number => b.reduce((s, x) => (s + x) & 0xff, 0);
const text = (ram: Uint8Array, at: number, n: number): string => Buffer.from(ram.subarray(at, at + n)).toString('latin1');

function findFloating(ram: Uint8Array): number | undefined {
  const ebda = u16(ram, 0x40e) << 4;
  const base = u16(ram, 0x413) * 1024;
  for (const [start, len] of [[0, 0x400], [base - 1024, 0x400], [ebda, 0x400], [0xf0000, 0x10000]] as const) {
    for (let at = start; at + 16 <= start + len; at += 16) {
      if (text(ram, at, 4) === '_MP_' && ram[at + 8] === 1 && sum(ram.subarray(at, at + 16)) === 0) return at;
    }
  }
  return undefined;
}

interface Decoded {
  cpus: Array<{ apicId: number; version: number; flags: number }>;
  buses: Array<{ id: number; type: string }>;
  ioapics: Array<{ id: number; version: number; flags: number; address: number }>;
  irqs: Array<{ type: number; flags: number; bus: number; irq: number; apic: number; pin: number }>;
  lints: Array<{ type: number; apic: number; lint: number }>;
  order: number[];
}

function decode(ram: Uint8Array, table: number): Decoded {
  const length = u16(ram, table + 4);
  const count = u16(ram, table + 34);
  const d: Decoded = { cpus: [], buses: [], ioapics: [], irqs: [], lints: [], order: [] };
  let at = table + 44;
  for (let i = 0; i < count; i++) {
    const type = ram[at]!;
    d.order.push(type);
    switch (type) {
      case 0:
        d.cpus.push({ apicId: ram[at + 1]!, version: ram[at + 2]!, flags: ram[at + 3]! });
        at += 20;
        break;
      case 1:
        d.buses.push({ id: ram[at + 1]!, type: text(ram, at + 2, 6) });
        at += 8;
        break;
      case 2:
        d.ioapics.push({ id: ram[at + 1]!, version: ram[at + 2]!, flags: ram[at + 3]!, address: u32(ram, at + 4) });
        at += 8;
        break;
      case 3:
        d.irqs.push({ type: ram[at + 1]!, flags: u16(ram, at + 2), bus: ram[at + 4]!, irq: ram[at + 5]!, apic: ram[at + 6]!, pin: ram[at + 7]! });
        at += 8;
        break;
      case 4:
        d.lints.push({ type: ram[at + 1]!, apic: ram[at + 6]!, lint: ram[at + 7]! });
        at += 8;
        break;
      default:
        throw new Error(`unknown MP entry type ${type}`);
    }
  }
  assert.is(at - table, length, 'base table length covers exactly the entries');
  return d;
}

for (const cpus of [1, 2, 4, 100]) {
  kernelTest(`MP table for ${cpus} vCPU(s): found, checksummed, every entry right`, () => {
    const g = guardedMemory(128 * MIB);
    const boot = loadLinux(g.memory, cpus, { kernel: kernelFile() });
    const ram = g.ram;
    const fp = findFloating(ram);
    assert.ok(fp !== undefined, 'a "_MP_" floating pointer where Linux scans');
    assert.is(fp, boot.report.mpTable!.floatingPointer);
    assert.is(fp! % 16, 0);
    assert.is(ram[fp! + 9], 4, 'spec revision 1.4');
    assert.is(ram[fp! + 11], 0, 'feature byte 1: a configuration table exists (no default configuration)');
    const table = u32(ram, fp! + 4);
    assert.is(table, boot.report.mpTable!.configTable.base);
    assert.is(text(ram, table, 4), 'PCMP');
    const length = u16(ram, table + 4);
    assert.is(sum(ram.subarray(table, table + length)), 0, 'configuration table checksum');
    assert.is(ram[table + 6], 4, 'spec revision 1.4');
    assert.is(u32(ram, table + 36), 0xfee00000, 'local APIC address');
    assert.is(u16(ram, table + 40), 0, 'no extended entries');
    // Small tables share the EBDA's KiB with the pointer; big ones go to the BIOS area.
    if (cpus <= 4) assert.ok(table >= 0x9fc00 && table + length <= 0xa0000, 'in the EBDA');
    else assert.ok(table >= 0xf0000 && table + length <= 0x100000, 'in the BIOS area');

    const d = decode(ram, table);
    assert.equal(d.order, [...d.order].sort((a, b) => a - b), 'entries in ascending type order (MP spec §4.3)');
    assert.is(d.cpus.length, cpus);
    d.cpus.forEach((c, i) => {
      assert.is(c.apicId, i);
      assert.is(c.flags & 1, 1, 'enabled');
      assert.is(c.flags & 2, i === 0 ? 2 : 0, 'BSP flag only on CPU 0');
      assert.is(c.version, 0x14);
    });
    assert.equal(d.buses.map((b) => b.type).sort(), ['ISA   ', 'PCI   ']);
    const isa = d.buses.find((b) => b.type === 'ISA   ')!.id;
    assert.is(d.ioapics.length, 1);
    assert.equal(d.ioapics[0], { id: cpus, version: 0x11, flags: 1, address: 0xfec00000 });
    assert.is(d.irqs.length, 16);
    d.irqs.forEach((r, i) => assert.equal(r, { type: 0, flags: 0, bus: isa, irq: i, apic: cpus, pin: i }, `ISA IRQ ${i}`));
    assert.equal(d.lints.map((l) => [l.type, l.lint, l.apic]), [[3, 0, 0xff], [1, 1, 0xff]], 'ExtINT on LINT0, NMI on LINT1');
    assert.ok(g.guardsIntact());
  });
}

kernelTest('mpTable: false writes none', () => {
  const g = guardedMemory(128 * MIB);
  const boot = loadLinux(g.memory, 2, { kernel: kernelFile(), mpTable: false });
  assert.is(boot.report.mpTable, undefined);
  assert.is(findFloating(g.ram), undefined);
});

test('more vCPUs than 8-bit APIC IDs allow is refused', () => {
  const g = guardedMemory(16 * MIB);
  assert.throws(() => loadLinux(g.memory, 255, { kernel: new Uint8Array(1) }), /cpus: 255 is not 1\.\.254/);
  assert.throws(() => loadLinux(g.memory, 0, { kernel: new Uint8Array(1) }), /cpus: 0/);
  assert.ok(g.untouched());
});

test.run();
