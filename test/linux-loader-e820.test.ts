// The e820 map in boot_params (zero-page.rst: e820_entries at 0x1e8, table
// at 0x2d0, 20-byte entries): sorted, non-overlapping, the legacy holes of a
// PC (EBDA, BIOS area) reserved, usable RAM adding up to the configured size
// less those holes, high RAM above 4 GiB listed, and no boot structure in a
// range the kernel could overwrite before it has read it.
import * as assert from 'uvu/assert';
import { test } from 'uvu';
import { loadLinux, type LinuxBootReport } from '../src/vmm/loader/linux-loader';
import { guardedMemory, kernelFile, kernelTest, MIB, u32, u64, u8 } from './support/linux-loader-rig';

interface Entry {
  addr: number;
  size: number;
  type: number;
}

function readE820(ram: Uint8Array, zp: number): Entry[] {
  const n = u8(ram, zp + 0x1e8);
  const out: Entry[] = [];
  for (let i = 0; i < n; i++) {
    const at = zp + 0x2d0 + 20 * i;
    out.push({ addr: u64(ram, at), size: u64(ram, at + 8), type: u32(ram, at + 16) });
  }
  return out;
}

function checkShape(e: Entry[]): void {
  assert.ok(e.length >= 4 && e.length <= 128, `${e.length} entries`);
  for (let i = 0; i < e.length; i++) {
    assert.ok(e[i]!.size > 0, 'no empty entry');
    assert.ok([1, 2].includes(e[i]!.type), 'RAM or reserved');
    if (i > 0) assert.ok(e[i - 1]!.addr + e[i - 1]!.size <= e[i]!.addr, `entry ${i} sorted and not overlapping entry ${i - 1}`);
  }
}

const usable = (e: Entry[]): Entry[] => e.filter((x) => x.type === 1);
const inUsable = (e: Entry[], base: number, size: number): boolean => usable(e).some((x) => base >= x.addr && base + size <= x.addr + x.size);
const overlaps = (a: { base: number; size: number }, b: { base: number; size: number }): boolean => a.base < b.base + b.size && b.base < a.base + a.size;

kernelTest('e820 for 256 MiB: legacy holes reserved, usable RAM = size - holes, sorted and disjoint', () => {
  const g = guardedMemory(256 * MIB);
  const boot = loadLinux(g.memory, 1, { kernel: kernelFile() });
  const e = readE820(g.ram, boot.report.zeroPage.base);
  assert.equal(e, boot.report.e820);
  checkShape(e);
  assert.equal(e[0], { addr: 0, size: 0x9fc00, type: 1 }, 'base memory up to the EBDA');
  assert.ok(e.some((x) => x.type === 2 && x.addr === 0x9fc00 && x.addr + x.size === 0xa0000), 'EBDA reserved');
  assert.ok(e.some((x) => x.type === 2 && x.addr === 0xf0000 && x.addr + x.size === 0x100000), 'BIOS area reserved');
  assert.ok(e.some((x) => x.type === 1 && x.addr === 0x100000 && x.addr + x.size === 256 * MIB), '1 MiB .. end of RAM usable');
  const total = usable(e).reduce((n, x) => n + x.size, 0);
  assert.is(total, 256 * MIB - (0x100000 - 0x9fc00), 'usable = configured - [EBDA, 1 MiB)');
  // KVM's TSS and identity-map pages below 4 GiB are reserved so the kernel puts no BAR there.
  assert.ok(e.some((x) => x.type === 2 && x.addr === 0xfffbc000 && x.size === 0x4000));
});

kernelTest('e820 with RAM above 4 GiB lists the high region', () => {
  const g = guardedMemory(128 * MIB, { gpa: 4 * 1024 * MIB, bytes: 16 * MIB });
  const boot = loadLinux(g.memory, 1, { kernel: kernelFile() });
  const e = readE820(g.ram, boot.report.zeroPage.base);
  checkShape(e);
  assert.ok(e.some((x) => x.type === 1 && x.addr === 4 * 1024 * MIB && x.size === 16 * MIB));
  assert.is(usable(e).reduce((n, x) => n + x.size, 0), 144 * MIB - (0x100000 - 0x9fc00));
  assert.ok(g.guardsIntact());
});

function checkStructures(r: LinuxBootReport, e: Entry[]): void {
  // Everything the kernel may overwrite before it has copied boot_params and the command line:
  // its load area and decompression buffer [load, run + init_size) and the decompressor's
  // trampoline (arch/x86/boot/compressed/pgtable_64.c: two pages below min(EBDA, 0x9F000)).
  const danger = [r.kernel.footprint, { base: 0x9d000, size: 0x2000 }];
  const structures = [
    { what: 'zero page', ...r.zeroPage },
    { what: 'command line', base: r.cmdline.address, size: r.cmdline.size },
    { what: 'GDT', ...r.gdt },
    { what: 'page tables', ...r.pageTables },
    { what: 'boot stack', ...r.stack },
    ...(r.mpTable ? [{ what: 'MP floating pointer', base: r.mpTable.floatingPointer, size: 16 }, { what: 'MP table', ...r.mpTable.configTable }] : []),
  ];
  for (const s of structures) {
    for (const d of danger) assert.not.ok(overlaps(s, d), `${s.what} is clear of [0x${d.base.toString(16)}, +0x${d.size.toString(16)})`);
    if (s.what.startsWith('MP')) {
      // The kernel reads the MP table late (after memblock is up): it must be reserved.
      assert.not.ok(usable(e).some((x) => overlaps(s, { base: x.addr, size: x.size })), `${s.what} is in reserved memory`);
    } else {
      // Read (or dropped) before the kernel allocates anything, and inside the first 64 KiB
      // that Linux keeps reserved anyway (CONFIG_X86_RESERVE_LOW).
      assert.ok(s.base + s.size <= 0x10000, `${s.what} is in the first 64 KiB`);
      assert.ok(inUsable(e, s.base, s.size), `${s.what} is ordinary RAM`);
    }
  }
  // The kernel and the initrd are in usable RAM (the kernel frees the initrd's pages later).
  assert.ok(inUsable(e, r.kernel.footprint.base, r.kernel.footprint.size), 'kernel footprint in usable RAM');
  if (r.initrd) {
    assert.ok(inUsable(e, r.initrd.base, r.initrd.size), 'initrd in usable RAM');
    assert.not.ok(overlaps(r.initrd, r.kernel.footprint), 'initrd clear of the kernel footprint');
    for (const s of structures) assert.not.ok(overlaps(r.initrd, s), `initrd clear of the ${s.what}`);
  }
}

kernelTest('boot structures are where the kernel cannot overwrite them before reading them', () => {
  for (const cpus of [1, 4, 100]) {
    const g = guardedMemory(256 * MIB);
    const boot = loadLinux(g.memory, cpus, { kernel: kernelFile(), initrd: new Uint8Array(5 * MIB).fill(1), commandLine: 'console=ttyS0' });
    checkStructures(boot.report, readE820(g.ram, boot.report.zeroPage.base));
  }
});

test.run();
