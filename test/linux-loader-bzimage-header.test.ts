// describeLinuxImage reads the real Debian bzImage's setup header field by
// field: each value is compared with a raw read at the offset boot.rst
// gives ("THE REAL-MODE KERNEL HEADER"), and with what the kernel's own
// build configuration says it must be.
import { existsSync, readFileSync } from 'node:fs';
import * as assert from 'uvu/assert';
import { test } from 'uvu';
import { describeLinuxImage, type BzImageInfo } from '../src/vmm/loader/linux-image';
import { KERNEL_CONFIG, KERNEL_PATH, kernelFile, kernelTest, u16, u32, u64, u8 } from './support/linux-loader-rig';

function config(name: string): string | undefined {
  if (!existsSync(KERNEL_CONFIG)) return undefined;
  return new RegExp(`^${name}=(.*)$`, 'm').exec(readFileSync(KERNEL_CONFIG, 'utf8'))?.[1];
}

kernelTest('magic, boot flag, protocol version and flags of the Debian bzImage', () => {
  const file = kernelFile();
  const info = describeLinuxImage(file, 'vmlinuz') as BzImageInfo;
  assert.is(info.format, 'bzImage');
  const h = info.header;
  assert.is(Buffer.from(file.subarray(0x202, 0x206)).toString('latin1'), 'HdrS');
  assert.is(h.header, 0x53726448, 'header "HdrS"');
  assert.is(h.bootFlag, 0xaa55);
  assert.is(h.version, u16(file, 0x206));
  assert.ok(h.version >= 0x020c, `protocol ${info.protocol} has the 64-bit entry`);
  assert.is(info.protocol, `2.${(u16(file, 0x206) & 0xff).toString().padStart(2, '0')}`);
  assert.is(h.loadflags, u8(file, 0x211));
  assert.ok(info.flags.loadedHigh, 'LOADED_HIGH: a bzImage');
  assert.is(h.xloadflags, u16(file, 0x236));
  assert.ok(info.flags.kernel64, 'XLF_KERNEL_64');
  assert.ok(info.flags.canBeLoadedAbove4G, 'XLF_CAN_BE_LOADED_ABOVE_4G (a 64-bit kernel)');
  assert.is(h.relocatableKernel, u8(file, 0x234));
  assert.ok(info.flags.relocatable, 'relocatable_kernel');
});

kernelTest('sizes and placement fields match raw reads and the kernel config', () => {
  const file = kernelFile();
  const info = describeLinuxImage(file) as BzImageInfo;
  const h = info.header;
  assert.is(h.setupSects, u8(file, 0x1f1));
  assert.is(info.setupBytes, ((u8(file, 0x1f1) || 4) + 1) * 512);
  assert.is(h.syssize, u32(file, 0x1f4));
  assert.is(info.protectedModeBytes, u32(file, 0x1f4) * 16);
  assert.ok(info.complete);
  assert.is(info.setupBytes + info.protectedModeBytes + info.trailingBytes, file.length);
  assert.is(info.headerEnd, 0x202 + u8(file, 0x201));
  assert.is(h.kernelAlignment, u32(file, 0x230));
  assert.is(h.minAlignment, u8(file, 0x235));
  assert.is(h.cmdlineSize, u32(file, 0x238));
  assert.is(h.cmdlineSize, 2047, 'COMMAND_LINE_SIZE - 1 on x86');
  assert.is(h.initrdAddrMax, u32(file, 0x22c));
  assert.is(h.initrdAddrMax, 0x7fffffff);
  assert.is(Number(h.prefAddress), u64(file, 0x258));
  assert.is(h.initSize, u32(file, 0x260));
  assert.ok(h.initSize > info.protectedModeBytes, 'init_size covers more than the compressed kernel');
  assert.is(h.payloadOffset, u32(file, 0x248));
  assert.is(h.payloadLength, u32(file, 0x24c));
  assert.is(h.code32Start, 0x100000);
  assert.is(h.typeOfLoader, 0, 'the file leaves type_of_loader to the loader');
  assert.is(h.setupData, 0n);
  const start = config('CONFIG_PHYSICAL_START');
  if (start) assert.is(Number(h.prefAddress), Number(start), 'pref_address = LOAD_PHYSICAL_ADDR');
  const align = config('CONFIG_PHYSICAL_ALIGN');
  if (align) assert.is(h.kernelAlignment, Number(align), 'kernel_alignment = CONFIG_PHYSICAL_ALIGN');
  const xz = config('CONFIG_KERNEL_XZ');
  if (xz === 'y') assert.is(info.payloadFormat, 'xz');
  assert.ok(info.kernelVersionString?.startsWith(`${KERNEL_PATH.replace('/boot/vmlinuz-', '')} `), info.kernelVersionString);
});

test('a file that is neither a bzImage nor an ELF is named and refused', () => {
  assert.throws(() => describeLinuxImage(new Uint8Array(4096), '/tmp/zeros'), /\/tmp\/zeros: no Linux boot header: bytes at 0x202 are .*not "HdrS"/);
  assert.throws(() => describeLinuxImage(new Uint8Array(100), 'k'), /k: 100 bytes is too short for a bzImage/);
});

test.run();
