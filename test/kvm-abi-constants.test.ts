// The const enums in src/kvm and src/host/epoll.ts are written out by hand;
// they must equal what the addons were compiled against (linux/kvm.h, sys/epoll.h).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { EpollEvents } from '../src/host/epoll';
import { Cap, ExitReason, IoDirection, IrqChip, MemoryFlags } from '../src/kvm';
import { kvmNative } from '../src/native/kvm';
import { sys } from '../src/native/sys';

const C = kvmNative.constants;
const S = sys.constants;

test('capability numbers match linux/kvm.h', () => {
  assert.is(Cap.Irqchip, C.KVM_CAP_IRQCHIP);
  assert.is(Cap.UserMemory, C.KVM_CAP_USER_MEMORY);
  assert.is(Cap.SetTssAddr, C.KVM_CAP_SET_TSS_ADDR);
  assert.is(Cap.ExtCpuid, C.KVM_CAP_EXT_CPUID);
  assert.is(Cap.NrVcpus, C.KVM_CAP_NR_VCPUS);
  assert.is(Cap.NrMemslots, C.KVM_CAP_NR_MEMSLOTS);
  assert.is(Cap.IrqRouting, C.KVM_CAP_IRQ_ROUTING);
  assert.is(Cap.Irqfd, C.KVM_CAP_IRQFD);
  assert.is(Cap.Pit2, C.KVM_CAP_PIT2);
  assert.is(Cap.Ioeventfd, C.KVM_CAP_IOEVENTFD);
  assert.is(Cap.SetIdentityMapAddr, C.KVM_CAP_SET_IDENTITY_MAP_ADDR);
  assert.is(Cap.VcpuEvents, C.KVM_CAP_VCPU_EVENTS);
  assert.is(Cap.MaxVcpus, C.KVM_CAP_MAX_VCPUS);
  assert.is(Cap.SignalMsi, C.KVM_CAP_SIGNAL_MSI);
  assert.is(Cap.IrqfdResample, C.KVM_CAP_IRQFD_RESAMPLE);
  assert.is(Cap.ImmediateExit, C.KVM_CAP_IMMEDIATE_EXIT);
  assert.is(C.KVM_API_VERSION, 12);
});

test('exit reasons and flags match linux/kvm.h', () => {
  assert.is(ExitReason.Unknown, C.KVM_EXIT_UNKNOWN);
  assert.is(ExitReason.Exception, C.KVM_EXIT_EXCEPTION);
  assert.is(ExitReason.Io, C.KVM_EXIT_IO);
  assert.is(ExitReason.Hypercall, C.KVM_EXIT_HYPERCALL);
  assert.is(ExitReason.Debug, C.KVM_EXIT_DEBUG);
  assert.is(ExitReason.Hlt, C.KVM_EXIT_HLT);
  assert.is(ExitReason.Mmio, C.KVM_EXIT_MMIO);
  assert.is(ExitReason.IrqWindowOpen, C.KVM_EXIT_IRQ_WINDOW_OPEN);
  assert.is(ExitReason.Shutdown, C.KVM_EXIT_SHUTDOWN);
  assert.is(ExitReason.FailEntry, C.KVM_EXIT_FAIL_ENTRY);
  assert.is(ExitReason.Intr, C.KVM_EXIT_INTR);
  assert.is(ExitReason.Nmi, C.KVM_EXIT_NMI);
  assert.is(ExitReason.InternalError, C.KVM_EXIT_INTERNAL_ERROR);
  assert.is(ExitReason.SystemEvent, C.KVM_EXIT_SYSTEM_EVENT);
  assert.is(ExitReason.IoapicEoi, C.KVM_EXIT_IOAPIC_EOI);
  assert.is(ExitReason.X86Rdmsr, C.KVM_EXIT_X86_RDMSR);
  assert.is(ExitReason.X86Wrmsr, C.KVM_EXIT_X86_WRMSR);
  assert.is(IoDirection.In, C.KVM_EXIT_IO_IN);
  assert.is(IoDirection.Out, C.KVM_EXIT_IO_OUT);
  assert.is(MemoryFlags.LogDirtyPages, C.KVM_MEM_LOG_DIRTY_PAGES);
  assert.is(MemoryFlags.ReadOnly, C.KVM_MEM_READONLY);
  assert.is(IrqChip.PicMaster, C.KVM_IRQCHIP_PIC_MASTER);
  assert.is(IrqChip.PicSlave, C.KVM_IRQCHIP_PIC_SLAVE);
  assert.is(IrqChip.Ioapic, C.KVM_IRQCHIP_IOAPIC);
  assert.is(EpollEvents.In, S.EPOLLIN);
  assert.is(EpollEvents.Out, S.EPOLLOUT);
  assert.is(EpollEvents.Err, S.EPOLLERR);
  assert.is(EpollEvents.Hup, S.EPOLLHUP);
  assert.is(EpollEvents.EdgeTriggered, S.EPOLLET);
});

test('kvm_run exit fields sit where the x86-64 ABI puts them', () => {
  const r = kvmNative.layout.run;
  assert.equal(
    [r.immediate_exit, r.exit_reason, r.io_direction, r.io_size, r.io_port, r.io_count, r.io_data_offset],
    [1, 8, 32, 33, 34, 36, 40],
  );
  assert.equal([r.mmio_phys_addr, r.mmio_data, r.mmio_len, r.mmio_is_write], [32, 40, 48, 52]);
  assert.equal([r.internal_suberror, r.system_event_type], [32, 32]);
  assert.is(kvmNative.layout.lapic.size, 1024);
});

test('flexible-array structs have their entries right after an 8-byte header (C layout, not C++)', () => {
  const l = kvmNative.layout;
  assert.equal([l.cpuid2.size, l.cpuid2.entries, l.cpuid2.entry_size], [8, 8, 40]);
  assert.equal([l.msrs.size, l.msrs.entries, l.msrs.entry_size], [8, 8, 16]);
  assert.equal([l.routing.size, l.routing.entries, l.routing.entry_size], [8, 8, 48]);
});

test.run();
