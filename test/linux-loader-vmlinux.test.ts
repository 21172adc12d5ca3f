// The vmlinux ELF path: the ELF is extracted from the Debian bzImage the way
// scripts/extract-vmlinux does it (the payload at the protected-mode part
// + payload_offset, decompressed by the tool its magic names), then loaded:
// PT_LOAD segments at their physical addresses (p_paddr), RIP = the physical
// entry (startup_64), and a zero page whose synthesized setup header the
// kernel accepts (HdrS, 0xAA55, version != 0).
import { spawnSync } from 'node:child_process';
import { gunzipSync } from 'node:zlib';
import * as assert from 'uvu/assert';
import { test } from 'uvu';
import { describeLinuxImage, type BzImageInfo, type VmlinuxInfo } from '../src/vmm/loader/linux-image';
import { loadLinux } from '../src/vmm/loader/linux-loader';
import { cstring, guardedMemory, HAVE_KERNEL, kernelFile, MIB, u16, u32, u64, u8 } from './support/linux-loader-rig';
import { skipTest } from './support/skip';

/** The vmlinux inside the bzImage, or why it could not be had. */
function extractVmlinux(): Buffer | string {
  const file = kernelFile();
  const info = describeLinuxImage(file) as BzImageInfo;
  const at = info.protectedModeOffset + info.header.payloadOffset;
  const payload = file.subarray(at, at + info.header.payloadLength);
  const tool: Record<string, string[]> = { xz: ['xz', '-dc', '--single-stream'], zstd: ['zstd', '-dc'], lzma: ['xz', '-dc', '--format=lzma'], bzip2: ['bzip2', '-dc'], lz4: ['lz4', '-dc'] };
  if (info.payloadFormat === 'gzip') return gunzipSync(payload);
  if (info.payloadFormat === 'elf') return Buffer.from(payload);
  const cmd = tool[info.payloadFormat];
  if (!cmd) return `payload compression ${info.payloadFormat} has no decompressor here`;
  const r = spawnSync(cmd[0]!, cmd.slice(1), { input: payload, maxBuffer: 512 * MIB });
  if (r.error || r.status !== 0) return `${cmd.join(' ')} failed: ${r.error?.message ?? r.stderr.toString().trim()}`;
  return r.stdout;
}

const vmlinux = HAVE_KERNEL ? extractVmlinux() : 'the Debian kernel file is missing';
const vmTest = (name: string, fn: (elf: Buffer) => void): void => {
  if (typeof vmlinux === 'string') skipTest(name, vmlinux);
  else test(name, () => fn(vmlinux));
};

vmTest('describeLinuxImage reads the extracted vmlinux: PT_LOAD segments by p_paddr, entry physical', (elf) => {
  const info = describeLinuxImage(elf, 'vmlinux') as VmlinuxInfo;
  assert.is(info.format, 'vmlinux');
  const phoff = u64(elf, 32);
  const phnum = u16(elf, 56);
  const loads = [];
  for (let i = 0; i < phnum; i++) {
    const o = phoff + 56 * i;
    if (u32(elf, o) === 1 && u64(elf, o + 40) > 0) loads.push({ index: i, physical: u64(elf, o + 24), fileOffset: u64(elf, o + 8), fileSize: u64(elf, o + 32), memSize: u64(elf, o + 40) });
  }
  loads.sort((a, b) => a.physical - b.physical);
  assert.equal(info.segments.map((s) => ({ index: s.index, physical: s.physical, fileOffset: s.fileOffset, fileSize: s.fileSize, memSize: s.memSize })), loads);
  // x86-64 links vmlinux with ENTRY(phys_startup_64): the entry is CONFIG_PHYSICAL_START.
  assert.is(info.entryField, BigInt(u64(elf, 24)));
  assert.is(info.entry, u32(kernelFile(), 0x258), 'entry = LOAD_PHYSICAL_ADDR');
  assert.is(info.start, info.entry);
});

vmTest('loadLinux(vmlinux): segments at p_paddr, RIP = startup_64, zero page with a synthesized header', (elf) => {
  const info = describeLinuxImage(elf) as VmlinuxInfo;
  const g = guardedMemory(160 * MIB);
  const initrd = Buffer.alloc(2 * MIB, 0x5a);
  const boot = loadLinux(g.memory, 2, { kernel: elf, kernelName: 'vmlinux', commandLine: 'console=ttyS0', initrd });
  const r = boot.report;
  assert.is(r.format, 'vmlinux');
  for (const s of info.segments) {
    assert.ok(Buffer.from(g.ram.subarray(s.physical, s.physical + s.fileSize)).equals(elf.subarray(s.fileOffset, s.fileOffset + s.fileSize)), `segment ${s.index} at 0x${s.physical.toString(16)}`);
    assert.ok(g.ram.subarray(s.physical + s.fileSize, s.physical + s.memSize).every((b) => b === 0), `segment ${s.index} zero-filled past p_filesz`);
  }
  assert.is(r.bsp.regs.rip, BigInt(info.entry));
  assert.is(r.bsp.regs.rsi, BigInt(r.zeroPage.base));
  assert.equal(r.kernel.footprint, { base: info.start, size: info.end - info.start });
  const zp = r.zeroPage.base;
  assert.is(u16(g.ram, zp + 0x1fe), 0xaa55);
  assert.is(Buffer.from(g.ram.subarray(zp + 0x202, zp + 0x206)).toString('latin1'), 'HdrS');
  assert.ok(u16(g.ram, zp + 0x206) >= 0x020c, 'version != 0: x86_64_start_reservations takes 0 as "not copied"');
  assert.is(u8(g.ram, zp + 0x210), 0xff);
  assert.is(u16(g.ram, zp + 0x236) & 1, 1, 'XLF_KERNEL_64');
  assert.is(cstring(g.ram, u32(g.ram, zp + 0x228)), 'console=ttyS0');
  const image = u32(g.ram, zp + 0x218);
  assert.is(u32(g.ram, zp + 0x21c), initrd.length);
  assert.ok(image >= info.end, 'initrd above the kernel image');
  assert.ok(Buffer.from(g.ram.subarray(image, image + initrd.length)).equals(initrd));
  assert.ok(u8(g.ram, zp + 0x1e8) >= 4, 'e820 entries');
  assert.ok(g.guardsIntact());
});

vmTest("loadAddress does not apply to a vmlinux", (elf) => {
  const g = guardedMemory(160 * MIB);
  assert.throws(() => loadLinux(g.memory, 1, { kernel: elf, kernelName: 'vmlinux', loadAddress: 0x200000 }), /vmlinux: loadAddress applies to a bzImage/);
  assert.ok(g.untouched());
});

test.run();
