// Identity page tables (SDM vol. 3A §4.5): what is built walks back to the
// same address with the asked-for rights and caching, at 2 MiB granularity
// where a whole 2 MiB region shares its attributes and 4 KiB elsewhere;
// holes stay unmapped; bad ranges are refused. Then the loader's own tables
// for the PMD image: page 0, the system block, boot info, stacks and their
// guard pages, the image and the MMIO window.
import * as assert from 'uvu/assert';
import { test } from 'uvu';
import { readFileSync } from 'node:fs';
import { ensurePmdImage } from '../src/guest-build/pmd';
import {
  buildIdentityPageTables, LARGE_PAGE_SIZE, loadBareMetal, PAGE_SIZE, pageTableBytes, PageTableError, walkPageTables, type MapRange,
} from '../src/vmm/loader';

const GiB = 2 ** 30;
const MiB = 2 ** 20;

function build(ranges: MapRange[], ramSize = 8 * MiB, tables = 0x10_0000): { ram: Uint8Array; cr3: number; bytes: number } {
  const ram = new Uint8Array(ramSize);
  const t = buildIdentityPageTables(ram, tables, 0x10_0000, ranges);
  return { ram, cr3: t.cr3, bytes: t.bytes };
}

test('2 MiB pages where a region is whole, 4 KiB pages around a hole, rights and caching per range', () => {
  const ranges: MapRange[] = [
    { base: 0x1000, size: 0x7000, user: false, writable: true }, // supervisor pages after an unmapped page 0
    { base: 0x8000, size: 4 * MiB - 0x8000, user: true, writable: true },
    { base: 5 * MiB, size: 0x3000, user: true, writable: false },
    { base: 3 * GiB, size: 16 * MiB, user: true, writable: true, uncached: true },
  ];
  const { ram, cr3, bytes } = build(ranges);
  assert.is(bytes, pageTableBytes(ranges));
  // PML4 + 1 PDPT + 2 PDs (GiB 0 and 3) + 2 PTs (the first 2 MiB; the 2 MiB region holding 5 MiB)
  assert.is(bytes, 6 * PAGE_SIZE);

  assert.is(walkPageTables(ram, cr3, 0), undefined, 'page 0 unmapped');
  assert.is(walkPageTables(ram, cr3, 0xfff), undefined);
  const sup = walkPageTables(ram, cr3, 0x1234)!;
  assert.equal({ ...sup }, { physical: 0x1234, pageSize: PAGE_SIZE, writable: true, user: false, cacheDisable: false, writeThrough: false });
  const low = walkPageTables(ram, cr3, 0x8010)!;
  assert.is(low.user, true);
  assert.is(low.pageSize, PAGE_SIZE, 'shares its 2 MiB region with page 0 and the supervisor pages');
  const big = walkPageTables(ram, cr3, 3 * MiB + 0x123)!;
  assert.equal([big.physical, big.pageSize, big.user, big.writable], [3 * MiB + 0x123, LARGE_PAGE_SIZE, true, true]);
  assert.is(walkPageTables(ram, cr3, 4 * MiB), undefined, 'gap between ranges');
  const ro = walkPageTables(ram, cr3, 5 * MiB + 0x2fff)!;
  assert.equal([ro.physical, ro.pageSize, ro.user, ro.writable], [5 * MiB + 0x2fff, PAGE_SIZE, true, false]);
  assert.is(walkPageTables(ram, cr3, 5 * MiB + 0x3000), undefined);
  const mmio = walkPageTables(ram, cr3, 3 * GiB + 15 * MiB + 8)!;
  assert.equal([mmio.physical, mmio.pageSize, mmio.cacheDisable, mmio.writeThrough], [3 * GiB + 15 * MiB + 8, LARGE_PAGE_SIZE, true, true]);
  assert.is(walkPageTables(ram, cr3, 3 * GiB + 16 * MiB), undefined);
});

test('addresses above 4 GiB and 512 GiB need more PDPTs and PDs; unaligned ends get page tables', () => {
  const ranges: MapRange[] = [
    { base: 5 * GiB + PAGE_SIZE, size: 2 * MiB, user: true, writable: true },
    { base: 600 * GiB, size: 4 * MiB, user: true, writable: true },
  ];
  const { ram, cr3, bytes } = build(ranges);
  // PML4 + 2 PDPTs (512 GiB apart) + 2 PDs + 2 PTs (the first range straddles two 2 MiB regions)
  assert.is(bytes, 7 * PAGE_SIZE);
  assert.is(walkPageTables(ram, cr3, 5 * GiB), undefined);
  assert.is(walkPageTables(ram, cr3, 5 * GiB + PAGE_SIZE)!.physical, 5 * GiB + PAGE_SIZE);
  assert.is(walkPageTables(ram, cr3, 5 * GiB + 2 * MiB + 0xabc)!.physical, 5 * GiB + 2 * MiB + 0xabc);
  assert.is(walkPageTables(ram, cr3, 5 * GiB + 2 * MiB + PAGE_SIZE), undefined);
  const far = walkPageTables(ram, cr3, 600 * GiB + 3 * MiB + 7)!;
  assert.equal([far.physical, far.pageSize], [600 * GiB + 3 * MiB + 7, LARGE_PAGE_SIZE]);
});

test('bad ranges and a too-small table area are refused', () => {
  const err = (re: RegExp) => (e: unknown) => e instanceof PageTableError && re.test((e as Error).message);
  const ram = new Uint8Array(4 * MiB);
  assert.throws(() => buildIdentityPageTables(ram, 0x10_0000, 0x10_0000, [{ base: 0x800, size: 0x1000, user: true, writable: true }]), err(/not 4 KiB aligned/));
  assert.throws(
    () =>
      buildIdentityPageTables(ram, 0x10_0000, 0x10_0000, [
        { base: 0, size: 0x3000, user: true, writable: true },
        { base: 0x2000, size: 0x1000, user: true, writable: true },
      ]),
    err(/overlap/),
  );
  assert.throws(() => buildIdentityPageTables(ram, 0x10_0000, 0x10_0000, [{ base: 2 ** 47, size: 0x1000, user: true, writable: true }]), err(/2\^47/));
  assert.throws(() => buildIdentityPageTables(ram, 0x10_0000, 0x1000, [{ base: 0, size: 0x1000, user: true, writable: true }]), err(/need 0x4000 bytes/));
  assert.throws(() => buildIdentityPageTables(ram, 0x10_0800, 0x10_0000, [{ base: 0, size: 0x1000, user: true, writable: true }]), err(/not 4 KiB aligned/));
});

test('the loader maps the PMD: page 0 and guard pages absent, system block supervisor, boot info read-only, MMIO uncached', () => {
  const ram = new Uint8Array(64 * MiB);
  const mmio = { base: 0xc000_0000, size: 0x1000_0000 };
  const boot = loadBareMetal({ ram, image: readFileSync(ensurePmdImage()), commandLine: 'mode=txonly', vcpus: 2, mmio });
  const cr3 = Number(boot.vcpus[0]!.sregs.cr3);
  assert.is(Number(boot.vcpus[1]!.sregs.cr3), cr3, 'one address space for all vCPUs');
  const L = boot.layout;
  const at = (a: number) => walkPageTables(ram, cr3, a);
  assert.is(at(0), undefined);
  for (const a of [L.gdt.base, L.idt.base, L.stubs.base, L.tss[0]!, L.exceptionStacks[1]!.base, L.pageTables.base]) {
    const t = at(a)!;
    assert.ok(t && !t.user && t.writable, `system page 0x${a.toString(16)} is supervisor-only`);
  }
  for (const a of [L.bootInfo[0]!, L.bootInfo[1]!, L.cmdline.base]) {
    const t = at(a)!;
    assert.ok(t && t.user && !t.writable, `boot page 0x${a.toString(16)} is user read-only`);
  }
  const entry = at(boot.entry)!;
  assert.ok(entry.user && entry.physical === boot.entry);
  for (const v of boot.vcpus) {
    const top = at(v.stackTop - 8)!;
    assert.ok(top.user && top.writable);
    const stack = L.stacks[v.index]!;
    assert.ok(at(stack.base)!.user);
    assert.is(at(stack.base - 1), undefined, `guard page below vCPU ${v.index}'s stack`);
  }
  const free = at(L.free.base + L.free.size - 1)!;
  assert.ok(free.user && free.writable);
  assert.ok(L.free.size > 32 * MiB, 'most of RAM is free for rings and buffers');
  const bar = at(mmio.base + 0x3000)!;
  assert.ok(bar.user && bar.writable && bar.cacheDisable && bar.writeThrough);
  assert.is(at(mmio.base + mmio.size), undefined);
  assert.is(at(ram.length), undefined, 'nothing above RAM but the window');
});

test.run();
