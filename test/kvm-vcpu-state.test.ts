// vCPU state round trips: general registers, segment registers, FPU/SSE
// state, MSRs and the LAPIC page come back as they were set.
import * as assert from 'uvu/assert';
import { test } from 'uvu';
import { GuestRam, Kvm, LapicReg, Msr, readLapicReg, writeLapicReg } from '../src/kvm';
import { KVM_DEVICE, kvmTest } from './support/kvm-guest';

kvmTest('regs, sregs, fpu, msrs and lapic round-trip through KVM', () => {
  const kvm = Kvm.open(KVM_DEVICE);
  const vm = kvm.createVm();
  const ram = GuestRam.allocate(1 << 16);
  vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: 0, memory: ram.bytes });
  vm.createIrqchip();
  const vcpu = vm.createVcpu(0);
  try {
    const r = vcpu.getRegs();
    r.rax = 0x1122334455667788n;
    r.r15 = 0xffffffff81000000n;
    r.rip = 0x1000n;
    r.rflags = 0x202n;
    vcpu.setRegs(r);
    assert.equal(vcpu.getRegs(), r);

    const s = vcpu.getSregs();
    s.ds.base = 0x12340n;
    s.ds.selector = 0x1234;
    s.gdt = { base: 0x500n, limit: 0x27 };
    s.idt = { base: 0x0n, limit: 0x3ff };
    vcpu.setSregs(s);
    const s2 = vcpu.getSregs();
    assert.is(s2.ds.base, 0x12340n);
    assert.is(s2.ds.selector, 0x1234);
    assert.equal(s2.gdt, { base: 0x500n, limit: 0x27 });
    assert.is(s2.cs.selector, s.cs.selector);

    const f = vcpu.getFpu();
    f.xmm[0] = 0x42;
    f.xmm[255] = 0x24;
    f.fcw = 0x27f;
    vcpu.setFpu(f);
    const f2 = vcpu.getFpu();
    assert.is(f2.xmm[0], 0x42);
    assert.is(f2.xmm[255], 0x24);
    assert.is(f2.fcw, 0x27f);
    assert.is(f2.mxcsr, 0, 'KVM_GET_FPU does not report MXCSR');

    vcpu.setMsrs([
      { index: Msr.SysenterCs, data: 0x10n },
      { index: Msr.KernelGsBase, data: 0xffffffff81234567n },
    ]);
    assert.equal(vcpu.getMsrs([Msr.SysenterCs, Msr.KernelGsBase]), [
      { index: Msr.SysenterCs, data: 0x10n },
      { index: Msr.KernelGsBase, data: 0xffffffff81234567n },
    ]);

    const lapic = vcpu.getLapic();
    writeLapicReg(lapic, LapicReg.Tpr, 0x20);
    vcpu.setLapic(lapic);
    assert.is(readLapicReg(vcpu.getLapic(), LapicReg.Tpr), 0x20);
    assert.is(readLapicReg(lapic, LapicReg.Id) >>> 24, 0, 'vCPU 0 has APIC ID 0');
  } finally {
    vcpu.close();
    vm.close();
    ram.release();
    kvm.close();
  }
});

test.run();
