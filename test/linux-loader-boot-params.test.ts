// The zero page the loader writes for the Debian bzImage, read back from
// guest memory at zero-page.rst's offsets: the setup header copied from the
// image, the loader's fields (type_of_loader, loadflags, heap_end_ptr),
// cmd_line_ptr pointing at the NUL-terminated command line, and
// ramdisk_image/size pointing at the initrd's bytes, placed as high as
// initrd_addr_max and low RAM allow.
import { randomBytes } from 'node:crypto';
import * as assert from 'uvu/assert';
import { test } from 'uvu';
import { loadLinux } from '../src/vmm/loader/linux-loader';
import { cstring, guardedMemory, kernelFile, kernelTest, MIB, u16, u32, u64, u8 } from './support/linux-loader-rig';

const CMDLINE = 'console=ttyS0 earlyprintk=ttyS0 panic=-1 root=/dev/ram0 xdpvm.test="a b"';

kernelTest('boot_params: setup header copied, loader fields set (boot.rst 64-bit protocol)', () => {
  const file = kernelFile();
  const g = guardedMemory(256 * MIB);
  const boot = loadLinux(g.memory, 1, { kernel: file, commandLine: CMDLINE });
  const zp = boot.report.zeroPage.base;
  assert.is(boot.report.bsp.regs.rsi, BigInt(zp), 'RSI = &boot_params');
  const ram = g.ram;
  const end = 0x202 + file[0x201]!;
  // Fields the loader writes (boot.rst: "modify" / "write" fields) differ; everything else is the file's.
  const loaderFields = new Set<number>();
  const mark = (off: number, size: number): void => {
    for (let i = 0; i < size; i++) loaderFields.add(off + i);
  };
  mark(0x210, 1); // type_of_loader
  mark(0x211, 1); // loadflags
  mark(0x214, 4); // code32_start
  mark(0x218, 8); // ramdisk_image, ramdisk_size
  mark(0x224, 2); // heap_end_ptr
  mark(0x226, 2); // ext_loader_ver/type
  mark(0x228, 4); // cmd_line_ptr
  mark(0x23c, 12); // hardware_subarch(_data)
  mark(0x250, 8); // setup_data
  for (let off = 0x1f1; off < end; off++) {
    if (!loaderFields.has(off)) assert.is(ram[zp + off], file[off], `setup header byte 0x${off.toString(16)} copied from the image`);
  }
  // Before the header only e820_entries is set (the ext_ fields are 0: everything is below 4 GiB).
  for (let off = 0; off < 0x1f1; off++) {
    if (off !== 0x1e8) assert.is(ram[zp + off], 0, `byte 0x${off.toString(16)} before the header is zero`);
  }
  assert.is(u8(ram, zp + 0x1ef), 0, 'sentinel stays 0 (sanitize_boot_params)');
  assert.is(u8(ram, zp + 0x210), 0xff, 'type_of_loader 0xFF');
  assert.is(u8(ram, zp + 0x211) & 0x01, 0x01, 'LOADED_HIGH kept');
  assert.is(u8(ram, zp + 0x211) & 0x80, 0x80, 'CAN_USE_HEAP set');
  assert.is(u8(ram, zp + 0x211) & 0x20, 0, 'QUIET_FLAG clear');
  assert.is(u16(ram, zp + 0x224), 0xfe00, 'heap_end_ptr: end of the 64 KiB setup segment - 0x200');
  assert.is(u32(ram, zp + 0x214), boot.report.kernel.loadAddress, 'code32_start = where the kernel is');
  assert.is(u32(ram, zp + 0x23c), 0, 'hardware_subarch X86_SUBARCH_PC');
  assert.is(u64(ram, zp + 0x250), 0, 'no setup_data');
  assert.ok(g.guardsIntact());
});

kernelTest('cmd_line_ptr (+ ext_cmd_line_ptr) points at the NUL-terminated command line', () => {
  const g = guardedMemory(256 * MIB);
  const boot = loadLinux(g.memory, 1, { kernel: kernelFile(), commandLine: CMDLINE });
  const zp = boot.report.zeroPage.base;
  const ptr = u32(g.ram, zp + 0x228) + u32(g.ram, zp + 0x0c8) * 2 ** 32;
  assert.is(ptr, boot.report.cmdline.address);
  assert.is(cstring(g.ram, ptr), CMDLINE);
  assert.is(g.ram[ptr + CMDLINE.length], 0, 'NUL-terminated');
  assert.is(boot.report.cmdline.size, CMDLINE.length + 1);
  assert.is(boot.report.cmdline.limit, 2047, 'cmdline_size from the header');
  // A command line of exactly cmdline_size bytes is accepted.
  const g2 = guardedMemory(256 * MIB);
  const long = 'x'.repeat(2047);
  const b2 = loadLinux(g2.memory, 1, { kernel: kernelFile(), commandLine: long });
  assert.is(cstring(g2.ram, b2.report.cmdline.address), long);
});

kernelTest('ramdisk_image/size: the initrd bytes are at that address, page-aligned, as high as allowed', () => {
  const initrd = randomBytes(3 * MIB + 123);
  for (const ramMiB of [128, 256]) {
    const g = guardedMemory(ramMiB * MIB);
    const boot = loadLinux(g.memory, 1, { kernel: kernelFile(), initrd });
    const zp = boot.report.zeroPage.base;
    const image = u32(g.ram, zp + 0x218) + u32(g.ram, zp + 0x0c0) * 2 ** 32;
    const size = u32(g.ram, zp + 0x21c) + u32(g.ram, zp + 0x0c4) * 2 ** 32;
    assert.is(size, initrd.length);
    assert.is(image % 4096, 0, 'page-aligned');
    assert.ok(Buffer.from(g.ram.subarray(image, image + size)).equals(initrd), 'initrd bytes at ramdisk_image');
    // Highest page-aligned start that still ends inside RAM (below initrd_addr_max = 2 GiB - 1 here).
    assert.is(image, Math.floor((ramMiB * MIB - size) / 4096) * 4096);
    assert.ok(image + size <= Math.min(ramMiB * MIB, 0x7fffffff + 1));
    const fp = boot.report.kernel.footprint;
    assert.ok(image >= fp.base + fp.size, 'above everything the kernel may write while decompressing');
    assert.equal(boot.report.initrd, { base: image, size });
    assert.ok(g.guardsIntact());
  }
});

kernelTest('no initrd: ramdisk fields are zero', () => {
  const g = guardedMemory(128 * MIB);
  const boot = loadLinux(g.memory, 1, { kernel: kernelFile() });
  const zp = boot.report.zeroPage.base;
  assert.is(u32(g.ram, zp + 0x218), 0);
  assert.is(u32(g.ram, zp + 0x21c), 0);
  assert.is(boot.report.initrd, undefined);
  assert.is(cstring(g.ram, u32(g.ram, zp + 0x228)), '', 'an empty command line is a lone NUL');
});

test.run();
