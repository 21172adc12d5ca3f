// Where the bzImage goes and where the BSP starts: the protected-mode part
// (file offset (setup_sects + 1) * 512, syssize * 16 bytes) byte for byte
// at 1 MiB, RIP = load address + 0x200 (boot.rst "64-bit BOOT PROTOCOL"),
// and the decompression window the relocatable kernel will use.
import * as assert from 'uvu/assert';
import { test } from 'uvu';
import { loadLinux } from '../src/vmm/loader/linux-loader';
import { guardedMemory, kernelFile, kernelTest, MIB, u32, u8 } from './support/linux-loader-rig';

kernelTest('the protected-mode part is at 1 MiB, byte for byte; entry = 1 MiB + 0x200', () => {
  const file = kernelFile();
  const g = guardedMemory(128 * MIB);
  const boot = loadLinux(g.memory, 1, { kernel: file });
  const setup = (u8(file, 0x1f1) + 1) * 512;
  const pm = u32(file, 0x1f4) * 16;
  assert.is(boot.report.kernel.loadAddress, 0x100000);
  assert.is(boot.report.kernel.bytes, pm);
  assert.ok(Buffer.from(g.ram.subarray(0x100000, 0x100000 + pm)).equals(file.subarray(setup, setup + pm)), 'kernel bytes at 1 MiB');
  assert.is(g.ram[0x100000 + pm], 0, 'the appended signature is not loaded');
  assert.is(boot.report.kernel.entry, 0x100200);
  assert.is(boot.report.bsp.regs.rip, 0x100200n);
  // The relocatable kernel decompresses at max(align_up(load, kernel_alignment), pref_address).
  const align = u32(file, 0x230);
  const pref = u32(file, 0x258);
  assert.is(boot.report.kernel.runAddress, Math.max(Math.ceil(0x100000 / align) * align, pref));
  assert.equal(boot.report.kernel.footprint, { base: 0x100000, size: boot.report.kernel.runAddress + u32(file, 0x260) - 0x100000 });
  assert.ok(g.guardsIntact());
});

kernelTest("loadAddress 'preferred' loads at pref_address; RIP follows it", () => {
  const file = kernelFile();
  const pref = u32(file, 0x258);
  const g = guardedMemory(128 * MIB);
  const boot = loadLinux(g.memory, 1, { kernel: file, loadAddress: 'preferred' });
  const setup = (u8(file, 0x1f1) + 1) * 512;
  assert.is(boot.report.kernel.loadAddress, pref);
  assert.is(boot.report.kernel.entry, pref + 0x200);
  assert.is(boot.report.kernel.runAddress, pref);
  assert.ok(Buffer.from(g.ram.subarray(pref, pref + 4096)).equals(file.subarray(setup, setup + 4096)));
  assert.is(u32(g.ram, boot.report.zeroPage.base + 0x214), pref, 'code32_start');
  assert.ok(g.ram.subarray(0x100000, 0x100000 + 4096).every((b) => b === 0), 'nothing at 1 MiB');
});

kernelTest('a bad loadAddress is refused before anything is written', () => {
  const g = guardedMemory(128 * MIB);
  for (const a of [0x1000, 0x100001, -1, 2.5, 0xf0000]) {
    assert.throws(() => loadLinux(g.memory, 1, { kernel: kernelFile(), loadAddress: a }), /loadAddress .* is not a 4 KiB-aligned address at or above 1 MiB/);
  }
  assert.ok(g.untouched());
});

kernelTest('the written ranges are exactly those reported, all inside RAM', () => {
  const g = guardedMemory(128 * MIB);
  const boot = loadLinux(g.memory, 2, { kernel: kernelFile(), initrd: new Uint8Array(4096).fill(9), commandLine: 'x' });
  const w = boot.report.written;
  for (const r of w) assert.ok(r.base >= 0 && r.base + r.size <= 128 * MIB, `${r.what} inside RAM`);
  const sorted = [...w].sort((a, b) => a.base - b.base);
  for (let i = 1; i < sorted.length; i++) assert.ok(sorted[i - 1]!.base + sorted[i - 1]!.size <= sorted[i]!.base, `${sorted[i - 1]!.what} and ${sorted[i]!.what} do not overlap`);
  // Every non-zero byte of RAM is inside some written range.
  for (let a = 0; a < 128 * MIB; a += 4096) {
    const page = g.ram.subarray(a, a + 4096);
    if (page.some((b) => b !== 0)) assert.ok(w.some((r) => a < r.base + r.size && r.base < a + 4096), `page 0x${a.toString(16)} was written by a reported range`);
  }
  assert.is(g.memory.outOfRange, 0);
  assert.ok(g.guardsIntact());
});

test.run();
