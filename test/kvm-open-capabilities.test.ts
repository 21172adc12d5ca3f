import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Cap, GuestRam, Kvm, KVM_API_VERSION, REQUIRED_CAPS } from '../src/kvm';
import { kvmNative } from '../src/native/kvm';
import { KVM_DEVICE, kvmTest } from './support/kvm-guest';

kvmTest('/dev/kvm opens at API version 12', () => {
  const kvm = Kvm.open(KVM_DEVICE);
  try {
    assert.is(kvm.apiVersion(), KVM_API_VERSION);
    assert.is(kvm.apiVersion(), 12);
  } finally {
    kvm.close();
  }
});

kvmTest('the capabilities the VMM uses are present', () => {
  const kvm = Kvm.open(KVM_DEVICE);
  try {
    for (const cap of [Cap.Irqchip, Cap.Ioeventfd, Cap.Irqfd, Cap.SignalMsi, Cap.UserMemory, Cap.IrqRouting, Cap.ImmediateExit]) {
      assert.ok(kvm.checkExtension(cap) > 0, `capability ${cap}`);
    }
    assert.ok(kvm.checkExtension(Cap.NrMemslots) >= 32, 'memory slots');
    kvm.requireExtensions(REQUIRED_CAPS);
    assert.throws(() => kvm.requireExtensions([0x7fff as Cap]), /missing KVM capabilities 32767/);
  } finally {
    kvm.close();
  }
});

kvmTest('a VM gets memory, an irqchip, a PIT and a vCPU with a mapped kvm_run area in reset state', () => {
  const kvm = Kvm.open(KVM_DEVICE);
  const vm = kvm.createVm();
  const ram = GuestRam.allocate(1 << 20);
  try {
    assert.ok(kvm.vcpuMmapSize() >= kvmNative.layout.run.size);
    vm.setTssAddr(0xfffbd000);
    vm.setIdentityMapAddr(0xfffbc000);
    vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: 0, memory: ram.bytes });
    vm.createIrqchip();
    vm.createPit2();
    assert.ok(vm.checkExtension(Cap.NrMemslots) > 0);
    const vcpu = vm.createVcpu(0);
    try {
      assert.is(vcpu.runArea.byteLength, kvm.vcpuMmapSize());
      const s = vcpu.getSregs();
      assert.is(s.cs.selector, 0xf000);
      assert.is(s.cs.base, 0xffff0000n);
      assert.is(vcpu.getRegs().rip, 0xfff0n);
      assert.is(s.cr0 & 1n, 0n, 'real mode');
    } finally {
      vcpu.close();
    }
    vm.deleteUserMemoryRegion(0);
  } finally {
    vm.close();
    ram.release();
    kvm.close();
  }
});

test.run();
