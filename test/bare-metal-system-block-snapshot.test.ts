// After a triple fault the VMM says whether the system block it built (GDT,
// IDT, stubs, TSSs, page tables, boot infos) is as loaded: what the CPU may
// change (page-table Accessed/Dirty, descriptor Accessed/busy, frames pushed
// on the exception stacks) is not a change; any other byte is, named by part.
import * as assert from 'uvu/assert';
import { test } from 'uvu';
import { readFileSync } from 'node:fs';
import { ensurePmdImage } from '../src/guest-build/pmd';
import { IDT_GATE_SIZE, loadBareMetal, SystemBlockSnapshot, type BareMetalBoot } from '../src/vmm/loader';

const MMIO = { base: 0xe000_0000, size: 0x100_0000 };

function loaded(vcpus = 2): { ram: Uint8Array; boot: BareMetalBoot; snap: SystemBlockSnapshot } {
  const ram = new Uint8Array(16 << 20);
  const boot = loadBareMetal({ ram, image: readFileSync(ensurePmdImage()), commandLine: 'mode=txonly', vcpus, mmio: MMIO });
  return { ram, boot, snap: SystemBlockSnapshot.take(ram, boot.layout) };
}

test('right after loading, the system block is as loaded', () => {
  const { ram, snap } = loaded();
  assert.equal(snap.changes(ram), []);
  assert.match(snap.describe(ram), /is as loaded/);
});

test('what the CPU itself writes is not a change: page-table A/D bits, descriptor accessed/busy bits, exception stack frames', () => {
  const { ram, boot, snap } = loaded();
  const l = boot.layout;
  for (let e = l.pageTables.base; e < l.pageTables.base + l.pageTables.size; e += 8) ram[e]! |= 0x60;
  // TSS 0's descriptor (after the five flat ones) goes busy when TR is loaded; code/data descriptors get Accessed.
  ram[l.gdt.base + 6 * 8 + 5]! |= 0x02;
  ram[l.gdt.base + 5 * 8 + 5]! |= 0x01;
  ram.fill(0xaa, l.exceptionStacks[0]!.base, l.exceptionStacks[0]!.base + l.exceptionStacks[0]!.size);
  assert.equal(snap.changes(ram), []);
});

test('a changed IDT gate, page-table address or boot info is named by part with its range', () => {
  const { ram, boot, snap } = loaded();
  const l = boot.layout;
  ram.fill(0, l.idt.base + 14 * IDT_GATE_SIZE, l.idt.base + 15 * IDT_GATE_SIZE);
  ram[l.pageTables.base + 1]! ^= 0x10; // bit 12: the frame address of the first entry
  ram[l.boot.base + 8]! ^= 1;
  const c = snap.changes(ram);
  assert.equal(
    c.map((x) => x.part),
    ['IDT', 'page tables', 'boot infos and command line'],
  );
  assert.ok(c[0]!.first >= l.idt.base + 14 * IDT_GATE_SIZE && c[0]!.last < l.idt.base + 15 * IDT_GATE_SIZE, JSON.stringify(c[0]));
  assert.is(c[1]!.first, l.pageTables.base + 1);
  assert.is(c[1]!.bytes, 1);
  assert.match(snap.describe(ram), /changed by a host-side writer .*IDT \d+ byte\(s\) in \[0x[0-9a-f]+, 0x[0-9a-f]+\]; page tables 1 byte\(s\)/);
});

test('the second TSS is compared too: a changed RSP0 on vCPU 1 is named', () => {
  const { ram, boot, snap } = loaded(2);
  ram[boot.layout.tss[1]! + 4]! ^= 0xff; // RSP0 low byte (TSS offset 4)
  assert.equal(
    snap.changes(ram).map((x) => x.part),
    ['TSS 1'],
  );
});

test.run();
