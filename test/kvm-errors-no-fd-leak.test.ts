// Error paths: bad slots, bad fds, duplicate vCPUs, closed fds throw errors
// that carry errno, and nothing leaks a file descriptor.
import * as assert from 'uvu/assert';
import { test } from 'uvu';
import { Epoll } from '../src/host/epoll';
import { EventFd } from '../src/host/eventfd';
import { GuestRam, Kvm } from '../src/kvm';
import { kvmNative } from '../src/native/kvm';
import { sys, type NativeError } from '../src/native/sys';
import { KVM_DEVICE, kvmTest, openFds } from './support/kvm-guest';

function throwsErrno(fn: () => unknown, code: string): void {
  try {
    fn();
  } catch (e) {
    const err = e as NativeError;
    assert.is(err.code, code, err.message);
    assert.type(err.errno, 'number');
    assert.type(err.syscall, 'string');
    return;
  }
  assert.unreachable(`expected ${code}`);
}

test('opening a missing KVM device fails with ENOENT and no fd', () => {
  const before = openFds();
  throwsErrno(() => Kvm.open('/nonexistent/kvm'), 'ENOENT');
  throwsErrno(() => Kvm.open('/dev/null'), 'ENOTTY'); // not a KVM device: the API version ioctl fails, fd closed
  assert.is(openFds(), before);
});

test('eventfd and epoll on bad fds fail with EBADF and no fd', () => {
  const before = openFds();
  const ep = Epoll.create();
  const e = EventFd.create();
  const fd = e.fd;
  e.close(); // nothing is opened below before fd is used, so the number stays free
  throwsErrno(() => sys.close(fd), 'EBADF');
  throwsErrno(() => ep.add(fd, 1), 'EBADF');
  ep.close();
  const stale = EventFd.create();
  stale.close();
  throwsErrno(() => stale.read(), 'EBADF');
  throwsErrno(() => stale.write(1), 'EBADF');
  assert.throws(() => sys.guestMemory(4097), /page size/);
  assert.throws(() => sys.guestMemory(0), /out of range/);
  assert.is(openFds(), before);
});

kvmTest('VM and vCPU ioctls with bad arguments throw errno errors and leak no fd', () => {
  const before = openFds();
  const kvm = Kvm.open(KVM_DEVICE);
  const vm = kvm.createVm();
  const ram = GuestRam.allocate(1 << 16, { memfd: 'kvm-errors' });
  try {
    throwsErrno(() => vm.setUserMemoryRegion({ slot: 0x7fff, guestPhysAddr: 0, memory: ram.bytes }), 'EINVAL');
    throwsErrno(() => vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: 0x123, memory: ram.bytes }), 'EINVAL');
    throwsErrno(() => vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: 0, memory: ram.bytes.subarray(1, 4097) }), 'EINVAL');
    vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: 0, memory: ram.bytes });
    vm.createIrqchip();
    throwsErrno(() => vm.createIrqchip(), 'EEXIST');
    const dead = EventFd.create();
    dead.close();
    throwsErrno(() => vm.assignIrqfd(dead.fd, 5), 'EBADF');
    throwsErrno(() => vm.assignIoeventfd({ eventfd: dead.fd, space: 'pio', addr: 0x600, len: 2 }), 'EBADF');
    const ev = EventFd.create();
    throwsErrno(() => vm.deassignIoeventfd({ eventfd: ev.fd, space: 'mmio', addr: 0xd0000000, len: 4 }), 'ENOENT');
    throwsErrno(() => vm.assignIoeventfd({ eventfd: ev.fd, space: 'pio', addr: 0x600, len: 3 }), 'EINVAL');
    ev.close();
    const vcpu = vm.createVcpu(0);
    throwsErrno(() => vm.createVcpu(0), 'EEXIST');
    assert.throws(() => vcpu.getMsrs([0xdeadbeef]), /MSR 0xdeadbeef not readable/);
    const fd = vcpu.fd;
    vcpu.close();
    throwsErrno(() => kvmNative.getRegs(fd, new Uint8Array(kvmNative.layout.regs.size)), 'EBADF');
    assert.is(kvmNative.run(fd), -9, 'run returns -EBADF');
    assert.throws(() => kvmNative.getRegs(fd, new Uint8Array(3)), /expected \d+ bytes/);
  } finally {
    vm.close();
    ram.release();
    kvm.close();
  }
  assert.is(openFds(), before);
});

test.run();
