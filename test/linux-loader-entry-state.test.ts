// The CPU state the 64-bit boot protocol asks for (boot.rst "64-bit BOOT
// PROTOCOL"): long mode with paging, identity-mapped page tables that walk
// correctly over the first 4 GiB, a GDT with flat __BOOT_CS (0x10,
// execute/read, 64-bit) and __BOOT_DS (0x18, read/write), CS = __BOOT_CS,
// DS = ES = SS = __BOOT_DS, interrupts off, RSI = &boot_params; the BSP gets
// it and the APs keep their reset state.
import * as assert from 'uvu/assert';
import type { Fpu, Regs, Sregs } from '../src/kvm/regs';
import type { Vcpu } from '../src/kvm/vcpu';
import { loadLinux } from '../src/vmm/loader/linux-loader';
import { guardedMemory, kernelFile, kernelTest, MIB, u32, walk } from './support/linux-loader-rig';
import { test } from 'uvu';

function descriptor(ram: Uint8Array, at: number): { base: number; limit: number; type: number; s: number; dpl: number; p: number; l: number; db: number; g: number } {
  const lo = u32(ram, at);
  const hi = u32(ram, at + 4);
  return {
    base: ((lo >>> 16) | ((hi & 0xff) << 16) | (hi & 0xff000000)) >>> 0,
    limit: (lo & 0xffff) | (hi & 0xf0000),
    type: (hi >>> 8) & 0xf,
    s: (hi >>> 12) & 1,
    dpl: (hi >>> 13) & 3,
    p: (hi >>> 15) & 1,
    l: (hi >>> 21) & 1,
    db: (hi >>> 22) & 1,
    g: (hi >>> 23) & 1,
  };
}

kernelTest('page tables identity-map the first 4 GiB (kernel, zero page, command line included)', () => {
  const g = guardedMemory(256 * MIB);
  const boot = loadLinux(g.memory, 1, { kernel: kernelFile(), commandLine: 'console=ttyS0' });
  const r = boot.report;
  const cr3 = Number(r.bsp.sregs.cr3);
  assert.is(cr3, r.pageTables.base);
  const probes = [0, 0x7000, r.cmdline.address, 0x100000, 0x100200, r.kernel.footprint.base + r.kernel.footprint.size - 1, 0x9fc00, 255 * MIB + 12345, 0xc0000000, 0xfec00000, 0xfee00000, 2 ** 32 - 1];
  for (const va of probes) {
    const t = walk(g.ram, cr3, va);
    assert.ok(t, `0x${va.toString(16)} is mapped`);
    assert.is(t!.pa, va, `0x${va.toString(16)} maps to itself`);
    assert.is(t!.pageSize, 2 * MIB, '2 MiB pages');
    assert.ok((t!.flags & 2) !== 0, 'writable');
    assert.is(t!.flags & 4, 0, 'supervisor only');
  }
  // RAM is cacheable; from the end of RAM (2 MiB-rounded) up, the PCI hole and APICs are not.
  assert.is(walk(g.ram, cr3, 0x100000)!.flags & 0x18, 0);
  assert.is(walk(g.ram, cr3, 0xfec00000)!.flags & 0x18, 0x18, 'PCD | PWT above RAM');
  assert.is(walk(g.ram, cr3, 2 ** 32), undefined, 'nothing above 4 GiB');
  assert.ok(r.pageTables.base + r.pageTables.size <= r.zeroPage.base, 'tables end before the zero page');
});

kernelTest('GDT: __BOOT_CS 0x10 flat 64-bit execute/read, __BOOT_DS 0x18 flat read/write; segment registers agree', () => {
  const g = guardedMemory(128 * MIB);
  const boot = loadLinux(g.memory, 1, { kernel: kernelFile() });
  const s = boot.report.bsp.sregs;
  const gdt = Number(s.gdt.base);
  assert.is(gdt, boot.report.gdt.base);
  assert.ok(s.gdt.limit >= 0x1f, 'limit covers 0x18');
  assert.is(u32(g.ram, gdt), 0);
  assert.is(u32(g.ram, gdt + 4), 0, 'null descriptor');
  const cs = descriptor(g.ram, gdt + 0x10);
  assert.equal(cs, { base: 0, limit: 0xfffff, type: 0xb, s: 1, dpl: 0, p: 1, l: 1, db: 0, g: 1 });
  const ds = descriptor(g.ram, gdt + 0x18);
  assert.equal(ds, { base: 0, limit: 0xfffff, type: 0x3, s: 1, dpl: 0, p: 1, l: 0, db: 1, g: 1 });
  const tss = descriptor(g.ram, gdt + 0x20);
  assert.is(tss.type, 0xb, 'busy 64-bit TSS');
  assert.is(tss.base, boot.report.tss.base);
  assert.is(s.cs.selector, 0x10);
  assert.is(s.cs.l, 1);
  assert.is(s.cs.db, 0);
  assert.is(s.cs.limit, 0xffffffff);
  assert.is(s.cs.base, 0n);
  for (const r of ['ds', 'es', 'ss'] as const) {
    assert.is(s[r].selector, 0x18, `${r} = __BOOT_DS`);
    assert.is(s[r].type, 3);
    assert.is(s[r].limit, 0xffffffff);
    assert.is(s[r].base, 0n);
  }
  assert.is(s.tr.selector, 0x20);
  assert.is(s.ldt.unusable, 1);
});

kernelTest('control registers: long mode with paging; RFLAGS.IF = 0; RSI = boot_params', () => {
  const g = guardedMemory(128 * MIB);
  const boot = loadLinux(g.memory, 1, { kernel: kernelFile() });
  const { regs, sregs } = boot.report.bsp;
  assert.is(sregs.cr0 & 0x8000_0001n, 0x8000_0001n, 'CR0.PG | PE');
  assert.is(sregs.cr4 & 0x20n, 0x20n, 'CR4.PAE');
  assert.is(sregs.cr4 & 0x1000n, 0n, 'CR4.LA57 clear: 4-level tables');
  assert.is(sregs.efer & 0x500n, 0x500n, 'EFER.LME | LMA');
  assert.is(regs.rflags & 0x200n, 0n, 'interrupts disabled');
  assert.is(regs.rflags & 2n, 2n);
  assert.is(regs.rsi, BigInt(boot.report.zeroPage.base));
  assert.is(regs.rip, BigInt(boot.report.kernel.entry));
  const rsp = Number(regs.rsp);
  assert.ok(rsp > boot.report.stack.base && rsp <= boot.report.stack.base + boot.report.stack.size, 'a stack for the pushes before the kernel sets its own');
});

/** Just enough of a Vcpu to record what setupVcpu does. */
function fakeVcpu(): { vcpu: Vcpu; calls: string[]; regs?: Regs; sregs?: Sregs; fpu?: Fpu } {
  const rec: { vcpu: Vcpu; calls: string[]; regs?: Regs; sregs?: Sregs; fpu?: Fpu } = { calls: [], vcpu: undefined as unknown as Vcpu };
  const seg = { base: 0n, limit: 0xffff, selector: 0, type: 3, present: 1, dpl: 0, db: 0, s: 1, l: 0, g: 0, avl: 0, unusable: 0 };
  const resetSregs = {
    cs: { ...seg, type: 0xb, selector: 0xf000, base: 0xffff0000n }, ds: seg, es: seg, fs: seg, gs: seg, ss: seg, tr: seg, ldt: seg,
    gdt: { base: 0n, limit: 0xffff }, idt: { base: 0n, limit: 0xffff },
    cr0: 0x60000010n, cr2: 0n, cr3: 0n, cr4: 0n, cr8: 0n, efer: 0n, apicBase: 0xfee00900n, interruptBitmap: [0n, 0n, 0n, 0n],
  } as Sregs;
  rec.vcpu = {
    getSregs: () => (rec.calls.push('getSregs'), structuredClone(resetSregs)),
    setSregs: (s: Sregs) => (rec.calls.push('setSregs'), (rec.sregs = s)),
    setRegs: (r: Regs) => (rec.calls.push('setRegs'), (rec.regs = r)),
    getFpu: () => (rec.calls.push('getFpu'), { fpr: new Uint8Array(128), fcw: 0x40, fsw: 0, ftwx: 0, lastOpcode: 0, lastIp: 0n, lastDp: 0n, xmm: new Uint8Array(256), mxcsr: 0 }),
    setFpu: (f: Fpu) => (rec.calls.push('setFpu'), (rec.fpu = f)),
    setMsrs: () => rec.calls.push('setMsrs'),
  } as unknown as Vcpu;
  return rec;
}

kernelTest('setupVcpu: the BSP gets the entry state over its own sregs; APs keep their reset state', () => {
  const g = guardedMemory(128 * MIB);
  const boot = loadLinux(g.memory, 4, { kernel: kernelFile() });
  const bsp = fakeVcpu();
  boot.setupVcpu(bsp.vcpu, 0);
  assert.equal(bsp.regs, boot.report.bsp.regs);
  assert.is(bsp.sregs!.cs.selector, 0x10);
  assert.is(bsp.sregs!.cr3, boot.report.bsp.sregs.cr3);
  assert.is(bsp.sregs!.apicBase, 0xfee00900n, 'APIC base (BSP flag) kept from the vCPU');
  assert.is(bsp.fpu!.fcw, 0x37f, 'x87 control word as after FNINIT');
  for (let i = 1; i < 4; i++) {
    const ap = fakeVcpu();
    boot.setupVcpu(ap.vcpu, i);
    assert.equal(ap.calls, ['setMsrs'], `AP ${i}: only the MTRR default type; it waits for INIT/SIPI`);
  }
});

test.run();
