// Everything from outside is hostile: a damaged kernel file, a command line
// or initrd that does not fit, too little memory. Each gives an error that
// names the file and what is wrong, and the loader writes nothing at all:
// guest RAM stays zero and the guard bytes around it stay intact.
import * as assert from 'uvu/assert';
import { test } from 'uvu';
import { loadLinux, LinuxLoaderError, type LinuxBootOptions } from '../src/vmm/loader/linux-loader';
import { guardedMemory, type GuardedMemory, kernelFile, kernelTest, MIB } from './support/linux-loader-rig';

const NAME = '/boot/vmlinuz-test';

/** The Debian kernel with some header bytes changed. */
function patched(edit: (dv: DataView, b: Buffer) => void): Buffer {
  const b = Buffer.from(kernelFile());
  edit(new DataView(b.buffer, b.byteOffset, b.byteLength), b);
  return b;
}

/** One guarded memory per size, reused: a refused load writes nothing, and untouched() checks that after every call. */
const memories = new Map<number, GuardedMemory>();

function refuses(what: string, ramBytes: number, opts: Partial<LinuxBootOptions>, pattern: RegExp, cpus = 1): void {
  let g = memories.get(ramBytes);
  if (!g) memories.set(ramBytes, (g = guardedMemory(ramBytes)));
  let error: unknown;
  try {
    loadLinux(g.memory, cpus, { kernelName: NAME, ...opts, kernel: opts.kernel ?? kernelFile() });
  } catch (e) {
    error = e;
  }
  assert.ok(error instanceof LinuxLoaderError, `${what}: a LinuxLoaderError (got ${String(error)})`);
  assert.match((error as Error).message, pattern, what);
  assert.ok(g.untouched(), `${what}: guest RAM untouched`);
  assert.ok(g.guardsIntact(), `${what}: nothing written outside guest RAM`);
  assert.is(g.memory.outOfRange, 0, `${what}: no access outside guest memory was even tried`);
}

const RAM = 128 * MIB;

kernelTest('truncated images', () => {
  const file = kernelFile();
  refuses('truncated in the payload', RAM, { kernel: file.subarray(0, 4 * MIB) }, /^\/boot\/vmlinuz-test: truncated: setup \(\d+ bytes\) \+ protected-mode kernel .* need \d+ bytes, the file has 4194304$/);
  refuses('truncated in the header', RAM, { kernel: file.subarray(0, 0x210) }, /vmlinuz-test: 528 bytes is too short for a bzImage/);
  refuses('empty file', RAM, { kernel: new Uint8Array(0) }, /vmlinuz-test: 0 bytes is too short/);
  refuses('syssize beyond the file', RAM, { kernel: patched((dv) => dv.setUint32(0x1f4, 0x0fffffff, true)) }, /vmlinuz-test: truncated/);
  refuses('syssize 0', RAM, { kernel: patched((dv) => dv.setUint32(0x1f4, 0, true)) }, /syssize is 0/);
});

kernelTest('wrong magic, boot flag, protocol and capability flags', () => {
  refuses('wrong magic', RAM, { kernel: patched((_dv, b) => b.write('HdrX', 0x202, 'latin1')) }, /vmlinuz-test: no Linux boot header: bytes at 0x202 are "HdrX", not "HdrS"/);
  refuses('no 0xAA55', RAM, { kernel: patched((dv) => dv.setUint16(0x1fe, 0x1234, true)) }, /boot_flag at 0x1fe is 0x1234, not 0xaa55/);
  refuses('protocol 2.11', RAM, { kernel: patched((dv) => dv.setUint16(0x206, 0x020b, true)) }, /vmlinuz-test: boot protocol 2\.11 is too old: the 64-bit entry point needs 2\.12/);
  refuses('protocol 2.02', RAM, { kernel: patched((dv) => dv.setUint16(0x206, 0x0202, true)) }, /boot protocol 2\.02 is too old/);
  refuses('no XLF_KERNEL_64', RAM, { kernel: patched((dv) => dv.setUint16(0x236, dv.getUint16(0x236, true) & ~1, true)) }, /XLF_KERNEL_64 is clear/);
  refuses('zImage', RAM, { kernel: patched((dv) => dv.setUint8(0x211, dv.getUint8(0x211) & ~1)) }, /LOADED_HIGH is clear: a zImage/);
  refuses('header running past boot_params', RAM, { kernel: patched((dv) => dv.setUint8(0x201, 0xff)) }, /setup header claims to end at 0x301/);
  refuses('kernel_alignment 3 MiB', RAM, { kernel: patched((dv) => dv.setUint32(0x230, 0x300000, true)) }, /kernel_alignment 0x300000 is not a power of two/);
  refuses('pref_address 2^60', RAM, { kernel: patched((dv) => dv.setBigUint64(0x258, 1n << 60n, true)) }, /pref_address 0x1000000000000000 is not a page-aligned address below 4 GiB/);
  refuses('init_size below the kernel size', RAM, { kernel: patched((dv) => dv.setUint32(0x260, 0x1000, true)) }, /init_size 0x1000 is smaller than the protected-mode kernel/);
});

kernelTest('command line too long or malformed', () => {
  refuses('2048 bytes', RAM, { commandLine: 'a'.repeat(2048) }, /command line is 2048 bytes; \/boot\/vmlinuz-test accepts at most 2047 \(cmdline_size\)/);
  refuses('cmdline_size 16', RAM, { commandLine: 'console=ttyS0 quiet', kernel: patched((dv) => dv.setUint32(0x238, 16, true)) }, /command line is 19 bytes; .* accepts at most 16 \(cmdline_size\)/);
  refuses('huge cmdline_size, huge command line', RAM, { commandLine: 'b'.repeat(40000), kernel: patched((dv) => dv.setUint32(0x238, 0xffffffff, true)) }, /command line is 40000 bytes; the loader's command-line area holds \d+/);
  refuses('NUL inside', RAM, { commandLine: 'console=ttyS0\0init=/bin/sh' }, /command line contains a NUL byte/);
  refuses('multi-byte characters counted as bytes', RAM, { commandLine: '\u00e9'.repeat(1024) }, /command line is 2048 bytes/);
});

kernelTest('initrd larger than RAM, or than the room above the kernel', () => {
  refuses('initrd > RAM', RAM, { initrd: new Uint8Array(200 * MIB), initrdName: '/tmp/huge.cpio' }, /^\/tmp\/huge\.cpio: 209715200 bytes do not fit in guest RAM: the initrd must lie between the kernel's end 0x[0-9a-f]+ and 0x8000000/);
  // The kernel's footprint ends at pref_address + init_size; one byte more than fits above it.
  const footprintEnd = kernelFile().readUInt32LE(0x258) + kernelFile().readUInt32LE(0x260);
  refuses('initrd one byte too big', RAM, { initrd: new Uint8Array(RAM - footprintEnd + 1), initrdName: 'rd' }, /rd: \d+ bytes do not fit/);
  const g = guardedMemory(RAM);
  const ok = loadLinux(g.memory, 1, { kernel: kernelFile(), initrd: new Uint8Array(RAM - footprintEnd).fill(1) });
  assert.is(ok.report.initrd!.base, footprintEnd, 'the largest initrd that fits sits right above the kernel');
  refuses('initrd_addr_max below the kernel', RAM, { initrd: new Uint8Array(4096), kernel: patched((dv) => dv.setUint32(0x22c, 0x00ffffff, true)) }, /initrd_addr_max \+ 1 = 0x1000000/);
  refuses('empty initrd', RAM, { initrd: new Uint8Array(0), initrdName: 'empty.img' }, /empty\.img is empty/);
});

kernelTest('memory too small', () => {
  refuses('64 MiB for a kernel needing ~80', 64 * MIB, {}, /memory too small for \/boot\/vmlinuz-test: loading at 0x100000 and decompressing at 0x1000000 \(init_size 0x[0-9a-f]+\) needs RAM up to 0x[0-9a-f]+, low RAM ends at 0x4000000/);
  refuses('init_size 4 GiB', RAM, { kernel: patched((dv) => dv.setUint32(0x260, 0xffffffff, true)) }, /memory too small/);
  refuses('1 MiB of RAM', MIB, {}, /memory too small: Linux needs RAM from address 0 past 1 MiB/);
});

test('vmlinux ELF damage is named', () => {
  const elf = Buffer.alloc(64 + 56);
  elf.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1], 0);
  elf.writeUInt16LE(2, 16); // ET_EXEC
  elf.writeUInt16LE(62, 18); // EM_X86_64
  elf.writeBigUInt64LE(0x1000000n, 24); // e_entry
  elf.writeBigUInt64LE(64n, 32); // e_phoff
  elf.writeUInt16LE(56, 54);
  elf.writeUInt16LE(1, 56);
  elf.writeUInt32LE(1, 64); // PT_LOAD
  elf.writeBigUInt64LE(0x200000n, 64 + 8); // p_offset past the end
  elf.writeBigUInt64LE(0xffffffff81000000n, 64 + 16);
  elf.writeBigUInt64LE(0x1000000n, 64 + 24);
  elf.writeBigUInt64LE(0x1000n, 64 + 32);
  elf.writeBigUInt64LE(0x1000n, 64 + 40);
  refuses('segment past the end of the file', RAM, { kernel: elf, kernelName: 'vmlinux' }, /^vmlinux: vmlinux ELF: PT_LOAD 0: bytes \[0x200000, \+0x1000\) run past the end of the 120-byte file/);
  const wrongArch = Buffer.from(elf);
  wrongArch.writeUInt16LE(3, 18);
  refuses('not x86-64', RAM, { kernel: wrongArch, kernelName: 'vmlinux' }, /e_machine 3 is not EM_X86_64/);
  const low = Buffer.from(elf);
  low.writeBigUInt64LE(0n, 64 + 8);
  low.writeBigUInt64LE(0x1000n, 64 + 24);
  low.writeBigUInt64LE(0x78n, 64 + 32);
  low.writeBigUInt64LE(0x1000n, 24);
  refuses('segment over the boot structures', RAM, { kernel: low, kernelName: 'vmlinux' }, /vmlinux: PT_LOAD at 0x1000 is below 1 MiB/);
});

test.run();
