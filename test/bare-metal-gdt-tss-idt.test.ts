// Descriptor bits (SDM vol. 3A §3.4.5, §7.2.3, §6.14.1): the flat 64-bit
// code and data descriptors have their well-known encodings, TSS
// descriptors and IDT gates carry their 64-bit bases, kvm_segment values
// agree with the descriptors in the GDT, and the loader's entry sregs are
// CPL 3 with IOPL 3 (or 0 on request) and consistent with the tables it
// wrote, and each TSS carries an I/O bitmap that allows every port.
import * as assert from 'uvu/assert';
import { test } from 'uvu';
import { readFileSync } from 'node:fs';
import { ensurePmdImage } from '../src/guest-build/pmd';
import {
  BOOT_CR0, BOOT_CR4, BOOT_EFER, BOOT_RFLAGS, buildExceptionStubs, buildGdt, buildTss, decodeDescriptor, describeGuestFault,
  encodeDescriptor, encodeIdtGate, encodeTssDescriptor, ERROR_CODE_VECTORS, EXCEPTION_VECTORS, FAULT_PORT, KERNEL_CODE64,
  BOOT_RFLAGS_IOPL0, IO_BITMAP_BYTES, KERNEL_DATA, kvmSegment, loadBareMetal, LoaderError, readGuestFault, Selector, stubOffset, TSS64_SIZE,
  TSS64_WITH_IO_BITMAP_SIZE, USER_CODE32, USER_CODE64, USER_DATA,
} from '../src/vmm/loader';

const q = ([lo, hi]: [number, number]): bigint => (BigInt(hi) << 32n) | BigInt(lo);

test('flat descriptors have their textbook encodings', () => {
  assert.is(q(encodeDescriptor(KERNEL_CODE64)), 0x00af9b000000ffffn);
  assert.is(q(encodeDescriptor(KERNEL_DATA)), 0x00cf93000000ffffn);
  assert.is(q(encodeDescriptor(USER_CODE64)), 0x00affb000000ffffn);
  assert.is(q(encodeDescriptor(USER_DATA)), 0x00cff3000000ffffn);
  assert.is(q(encodeDescriptor(USER_CODE32)), 0x00cffb000000ffffn);
});

test('descriptors decode back; bases and limits spread over their split fields', () => {
  const d = { base: 0x12345678, limit: 0xabcde, type: 0x3, s: 1, dpl: 2, present: 1, avl: 1, l: 0, db: 1, g: 0 };
  const [lo, hi] = encodeDescriptor(d);
  assert.equal(decodeDescriptor(lo, hi), d);
  assert.is(lo & 0xffff, 0xbcde, 'limit 15:0');
  assert.is(lo >>> 16, 0x5678, 'base 15:0');
  assert.is(hi & 0xff, 0x34, 'base 23:16');
  assert.is(hi >>> 24, 0x12, 'base 31:24');
  assert.is((hi >>> 16) & 0xf, 0xa, 'limit 19:16');
  assert.throws(() => encodeDescriptor({ ...USER_CODE64, db: 1 }), /L = 1/);
  assert.throws(() => encodeDescriptor({ ...USER_DATA, base: 2 ** 32 }), /32-bit base/);
});

test('a 64-bit TSS descriptor holds the upper base dword in its second half; a plain TSS has RSP0 and no I/O bitmap', () => {
  const base = 0x1_2345_6000;
  const [w0, w1, w2, w3] = encodeTssDescriptor(base);
  const low = decodeDescriptor(w0, w1);
  assert.equal([low.base, low.limit, low.type, low.s, low.present, low.dpl], [0x2345_6000, TSS64_SIZE - 1, 0xb, 0, 1, 0]);
  assert.equal([w2, w3], [1, 0]);
  assert.is(decodeDescriptor(...(encodeTssDescriptor(base, 0x67, false).slice(0, 2) as [number, number])).type, 0x9);
  const tss = new DataView(buildTss(0x7000).buffer);
  assert.is(tss.getBigUint64(4, true), 0x7000n, 'RSP0');
  assert.is(tss.byteLength, TSS64_SIZE);
  assert.is(tss.getUint16(102, true), TSS64_SIZE, 'I/O map base past the limit: no bitmap');
});

test('a TSS with an I/O bitmap: map base 104, 8192 zero bytes (every port allowed), then the 0xff terminator', () => {
  const tss = buildTss(0x7000, 0x8000, true);
  const dv = new DataView(tss.buffer);
  assert.is(IO_BITMAP_BYTES, 65536 / 8);
  assert.is(tss.length, 104 + 8192 + 1);
  assert.is(TSS64_WITH_IO_BITMAP_SIZE, tss.length);
  assert.is(dv.getBigUint64(4, true), 0x7000n, 'RSP0');
  assert.is(dv.getBigUint64(36, true), 0x8000n, 'IST1');
  assert.is(dv.getUint16(102, true), 104, 'I/O map base: right after the 104-byte TSS');
  for (let port = 0; port < 65536; port += 1) {
    if (tss[104 + (port >>> 3)]! & (1 << (port & 7))) assert.unreachable(`port 0x${port.toString(16)} is denied`);
  }
  assert.is(tss[104 + 8192], 0xff, 'terminator byte');
  const [w0, w1] = encodeTssDescriptor(0x4000, tss.length - 1);
  assert.is(decodeDescriptor(w0, w1).limit, 8296, 'a limit that covers the bitmap and its terminator');
});

test('the GDT puts each descriptor at its selector, one TSS per vCPU', () => {
  const gdt = buildGdt([0x4000, 0x4068]);
  const dv = new DataView(gdt.buffer);
  const at = (sel: number) => decodeDescriptor(dv.getUint32(sel & ~7, true), dv.getUint32((sel & ~7) + 4, true));
  assert.is(gdt.length, 0x30 + 32);
  assert.is(dv.getBigUint64(0, true), 0n, 'null descriptor');
  assert.equal(at(Selector.KernelCode), KERNEL_CODE64);
  assert.equal(at(Selector.KernelData), KERNEL_DATA);
  assert.equal(at(Selector.UserCode), USER_CODE64);
  assert.equal(at(Selector.UserData), USER_DATA);
  assert.equal(at(Selector.UserCode32), USER_CODE32);
  assert.is(Selector.UserCode - Selector.UserCode32, 16, 'SYSRET: CS64 = STAR[63:48] + 16');
  assert.is(Selector.UserData - Selector.UserCode32, 8, 'SYSRET: SS = STAR[63:48] + 8');
  assert.is(at(0x40).base, 0x4068);
  assert.is(at(0x40).type, 0xb);
});

test('an IDT gate carries a 64-bit offset, the kernel code selector and type 0xE, present', () => {
  const g = new DataView(encodeIdtGate(0x1_8000_3010).buffer);
  assert.is(g.getUint16(0, true), 0x3010);
  assert.is(g.getUint16(2, true), Selector.KernelCode);
  assert.is(g.getUint8(4), 0, 'IST 0');
  assert.is(g.getUint8(5), 0x8e);
  assert.is(g.getUint16(6, true), 0x8000);
  assert.is(g.getUint32(8, true), 1);
});

test('kvm_segment values expand the limit and keep the descriptor bits', () => {
  const cs = kvmSegment(Selector.UserCode, USER_CODE64);
  assert.equal(cs, { base: 0n, limit: 0xffffffff, selector: 0x2b, type: 0xb, present: 1, dpl: 3, db: 0, s: 1, l: 1, g: 1, avl: 0, unusable: 0 });
});

test('exception stubs: each vector pushes a uniform frame and jumps to the OUT to the fault port', () => {
  const code = buildExceptionStubs();
  const dv = new DataView(code.buffer);
  const common = EXCEPTION_VECTORS * 16;
  for (let v = 0; v < EXCEPTION_VECTORS; v++) {
    let at = stubOffset(v);
    if (!ERROR_CODE_VECTORS.has(v)) {
      assert.equal([code[at], code[at + 1]], [0x6a, 0x00], `vector ${v}: push 0`);
      at += 2;
    }
    assert.equal([code[at], code[at + 1]], [0x6a, v], `vector ${v}: push vector`);
    assert.is(code[at + 2], 0xe9);
    assert.is(at + 7 + dv.getInt32(at + 3, true), common, `vector ${v}: jmp common`);
  }
  assert.equal([...code.subarray(common, common + 8)], [0x66, 0xba, FAULT_PORT & 0xff, FAULT_PORT >> 8, 0x8b, 0x04, 0x24, 0xef]);
  // The frame the VMM reads back at RSP.
  const ram = new Uint8Array(0x10000);
  const f = new DataView(ram.buffer);
  [14, 0x6, 0x401234, 0x2b, 0x3202, 0x3fff00, 0x23].forEach((x, i) => f.setBigUint64(0x8000 + 8 * i, BigInt(x), true));
  const fault = readGuestFault(ram, 0x8000, 0xdead000)!;
  assert.equal([fault.vector, fault.errorCode, fault.rip, fault.cs, fault.rsp, fault.ss, fault.cr2], [14, 6, 0x401234, 0x2b, 0x3fff00, 0x23, 0xdead000]);
  assert.match(describeGuestFault(fault), /#PF page fault.*rip 0x401234.*cr2 0xdead000/);
  assert.is(readGuestFault(ram, 0xfff0), undefined);
});

test('the loader enters each vCPU at CPL 3 with IOPL 3, consistent with the GDT and TSS it wrote', () => {
  const ram = new Uint8Array(32 << 20);
  const boot = loadBareMetal({ ram, image: readFileSync(ensurePmdImage()), vcpus: 3, mmio: { base: 0xc000_0000, size: 0x1000_0000 } });
  const dv = new DataView(ram.buffer);
  const gdtBase = boot.layout.gdt.base;
  const descriptor = (sel: number) => decodeDescriptor(dv.getUint32(gdtBase + (sel & ~7), true), dv.getUint32(gdtBase + (sel & ~7) + 4, true));
  for (const v of boot.vcpus) {
    const s = v.sregs;
    assert.is(v.regs.rflags, BOOT_RFLAGS);
    assert.is((v.regs.rflags >> 12n) & 3n, 3n, 'IOPL 3');
    assert.is(v.regs.rflags & 0x200n, 0n, 'IF 0');
    assert.is(v.regs.rip, BigInt(boot.entry));
    assert.is(v.regs.rdi, BigInt(boot.layout.bootInfo[v.index]!));
    assert.is(v.regs.rsp % 16n, 0n);
    assert.equal([s.cr0, s.cr4, s.efer], [BOOT_CR0, BOOT_CR4, BOOT_EFER]);
    assert.is(s.cs.selector & 3, 3, 'CS RPL 3');
    assert.is(s.cs.dpl, 3);
    assert.is(s.ss.dpl, 3, 'SS.DPL = CPL');
    assert.equal({ ...s.cs }, kvmSegment(s.cs.selector, descriptor(s.cs.selector)), 'CS as the GDT says');
    assert.equal({ ...s.ss }, kvmSegment(s.ss.selector, descriptor(s.ss.selector)), 'SS as the GDT says');
    assert.is(s.gdt.base, BigInt(gdtBase));
    assert.is(s.gdt.limit, boot.layout.gdt.size - 1);
    assert.is(s.idt.limit, EXCEPTION_VECTORS * 16 - 1);
    const tr = descriptor(s.tr.selector);
    const trHigh = dv.getUint32(gdtBase + s.tr.selector + 8, true);
    assert.is(Number(s.tr.base), tr.base + trHigh * 2 ** 32, 'TR base as the GDT says');
    assert.is(s.tr.type, 0xb);
    assert.is(Number(s.tr.base), boot.layout.tss[v.index]);
    const rsp0 = dv.getUint32(Number(s.tr.base) + 4, true);
    const ex = boot.layout.exceptionStacks[v.index]!;
    assert.is(rsp0, ex.base + ex.size, "the TSS's RSP0 is this vCPU's exception stack");
    // The I/O bitmap, byte by byte, and limits (GDT descriptor and TR) that cover it and its terminator.
    const tssBase = Number(s.tr.base);
    assert.is(tr.limit, TSS64_WITH_IO_BITMAP_SIZE - 1, 'GDT TSS limit covers the bitmap');
    assert.is(s.tr.limit, TSS64_WITH_IO_BITMAP_SIZE - 1, 'TR limit covers the bitmap');
    assert.is(dv.getUint16(tssBase + 102, true), TSS64_SIZE, 'I/O map base');
    for (let b = 0; b < IO_BITMAP_BYTES; b++) if (ram[tssBase + TSS64_SIZE + b] !== 0) assert.unreachable(`bitmap byte ${b} is not 0`);
    assert.is(ram[tssBase + TSS64_SIZE + IO_BITMAP_BYTES], 0xff, 'terminator');
    assert.is(s.ldt.unusable, 1);
  }
  // The TSSs do not overlap each other.
  const bases = [...boot.layout.tss].sort((a, b) => a - b);
  for (let i = 1; i < bases.length; i++) assert.ok(bases[i]! - bases[i - 1]! >= TSS64_WITH_IO_BITMAP_SIZE, 'TSSs apart');
  // IDT gate 14 points at stub 14.
  const idt = boot.layout.idt.base + 14 * 16;
  assert.is(dv.getUint16(idt, true) + dv.getUint16(idt + 6, true) * 0x10000, boot.layout.stubs.base + stubOffset(14));
});

test('iopl: 0 enters with IOPL 0 and the same TSS bitmap; anything but 0 or 3 is refused', () => {
  const ram = new Uint8Array(32 << 20);
  const mmio = { base: 0xc000_0000, size: 0x1000_0000 };
  const image = readFileSync(ensurePmdImage());
  const boot = loadBareMetal({ ram, image, vcpus: 2, mmio, iopl: 0 });
  for (const v of boot.vcpus) {
    assert.is(v.regs.rflags, BOOT_RFLAGS_IOPL0);
    assert.is((v.regs.rflags >> 12n) & 3n, 0n, 'IOPL 0');
    assert.is(v.regs.rflags & 2n, 2n, 'bit 1 always set');
    assert.is(ram[boot.layout.tss[v.index]! + TSS64_SIZE + IO_BITMAP_BYTES], 0xff);
  }
  assert.throws(() => loadBareMetal({ ram, image, mmio, iopl: 1 as 0 }), (e: unknown) => e instanceof LoaderError && /iopl: 1 is not 0 or 3/.test((e as Error).message));
});

test.run();
