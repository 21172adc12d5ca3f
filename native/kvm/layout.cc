// Offsets and sizes of the kernel structs TypeScript reads and writes
// (taken from <linux/kvm.h> here, so TypeScript never hard-codes a layout),
// and the ABI constants it passes back in.
#include "kvm.h"

#include <cstddef>
#include "uapi.h"

namespace xdpvm {
namespace {

struct Field {
  const char* name;
  size_t value;
};

Napi::Object Table(Napi::Env env, std::initializer_list<Field> fields) {
  Napi::Object o = Napi::Object::New(env);
  for (const Field& f : fields) o.Set(f.name, Napi::Number::New(env, static_cast<double>(f.value)));
  return o;
}

#define F(s, m) Field{#m, offsetof(s, m)}
#define N(name, expr) Field{name, static_cast<size_t>(expr)}

}  // namespace

void InitKvmLayout(Napi::Env env, Napi::Object exports) {
  Napi::Object l = Napi::Object::New(env);
  l.Set("run", Table(env, {
    N("size", sizeof(kvm_run)),
    F(kvm_run, request_interrupt_window), F(kvm_run, immediate_exit), F(kvm_run, exit_reason),
    F(kvm_run, ready_for_interrupt_injection), F(kvm_run, if_flag), F(kvm_run, flags), F(kvm_run, cr8),
    F(kvm_run, apic_base),
    N("hw_hardware_exit_reason", offsetof(kvm_run, hw.hardware_exit_reason)),
    N("fail_entry_reason", offsetof(kvm_run, fail_entry.hardware_entry_failure_reason)),
    N("fail_entry_cpu", offsetof(kvm_run, fail_entry.cpu)),
    N("ex_exception", offsetof(kvm_run, ex.exception)),
    N("ex_error_code", offsetof(kvm_run, ex.error_code)),
    N("io_direction", offsetof(kvm_run, io.direction)),
    N("io_size", offsetof(kvm_run, io.size)),
    N("io_port", offsetof(kvm_run, io.port)),
    N("io_count", offsetof(kvm_run, io.count)),
    N("io_data_offset", offsetof(kvm_run, io.data_offset)),
    N("mmio_phys_addr", offsetof(kvm_run, mmio.phys_addr)),
    N("mmio_data", offsetof(kvm_run, mmio.data)),
    N("mmio_len", offsetof(kvm_run, mmio.len)),
    N("mmio_is_write", offsetof(kvm_run, mmio.is_write)),
    N("internal_suberror", offsetof(kvm_run, internal.suberror)),
    N("internal_ndata", offsetof(kvm_run, internal.ndata)),
    N("internal_data", offsetof(kvm_run, internal.data)),
    N("system_event_type", offsetof(kvm_run, system_event.type)),
    N("system_event_ndata", offsetof(kvm_run, system_event.ndata)),
    N("system_event_data", offsetof(kvm_run, system_event.data)),
  }));
  l.Set("regs", Table(env, {
    N("size", sizeof(kvm_regs)),
    F(kvm_regs, rax), F(kvm_regs, rbx), F(kvm_regs, rcx), F(kvm_regs, rdx), F(kvm_regs, rsi), F(kvm_regs, rdi),
    F(kvm_regs, rsp), F(kvm_regs, rbp), F(kvm_regs, r8), F(kvm_regs, r9), F(kvm_regs, r10), F(kvm_regs, r11),
    F(kvm_regs, r12), F(kvm_regs, r13), F(kvm_regs, r14), F(kvm_regs, r15), F(kvm_regs, rip), F(kvm_regs, rflags),
  }));
  l.Set("segment", Table(env, {
    N("size", sizeof(kvm_segment)),
    F(kvm_segment, base), F(kvm_segment, limit), F(kvm_segment, selector), F(kvm_segment, type),
    F(kvm_segment, present), F(kvm_segment, dpl), F(kvm_segment, db), F(kvm_segment, s), F(kvm_segment, l),
    F(kvm_segment, g), F(kvm_segment, avl), F(kvm_segment, unusable),
  }));
  l.Set("dtable", Table(env, {N("size", sizeof(kvm_dtable)), F(kvm_dtable, base), F(kvm_dtable, limit)}));
  l.Set("sregs", Table(env, {
    N("size", sizeof(kvm_sregs)),
    F(kvm_sregs, cs), F(kvm_sregs, ds), F(kvm_sregs, es), F(kvm_sregs, fs), F(kvm_sregs, gs), F(kvm_sregs, ss),
    F(kvm_sregs, tr), F(kvm_sregs, ldt), F(kvm_sregs, gdt), F(kvm_sregs, idt), F(kvm_sregs, cr0),
    F(kvm_sregs, cr2), F(kvm_sregs, cr3), F(kvm_sregs, cr4), F(kvm_sregs, cr8), F(kvm_sregs, efer),
    F(kvm_sregs, apic_base), F(kvm_sregs, interrupt_bitmap),
  }));
  l.Set("fpu", Table(env, {
    N("size", sizeof(kvm_fpu)),
    F(kvm_fpu, fpr), F(kvm_fpu, fcw), F(kvm_fpu, fsw), F(kvm_fpu, ftwx), F(kvm_fpu, last_opcode),
    F(kvm_fpu, last_ip), F(kvm_fpu, last_dp), F(kvm_fpu, xmm), F(kvm_fpu, mxcsr),
  }));
  l.Set("msrs", Table(env, {
    N("size", sizeof(kvm_msrs)), F(kvm_msrs, nmsrs), F(kvm_msrs, entries),
    N("entry_size", sizeof(kvm_msr_entry)), N("entry_index", offsetof(kvm_msr_entry, index)),
    N("entry_data", offsetof(kvm_msr_entry, data)),
  }));
  l.Set("cpuid2", Table(env, {
    N("size", sizeof(kvm_cpuid2)), F(kvm_cpuid2, nent), F(kvm_cpuid2, entries),
    N("entry_size", sizeof(kvm_cpuid_entry2)),
    N("entry_function", offsetof(kvm_cpuid_entry2, function)), N("entry_index", offsetof(kvm_cpuid_entry2, index)),
    N("entry_flags", offsetof(kvm_cpuid_entry2, flags)), N("entry_eax", offsetof(kvm_cpuid_entry2, eax)),
    N("entry_ebx", offsetof(kvm_cpuid_entry2, ebx)), N("entry_ecx", offsetof(kvm_cpuid_entry2, ecx)),
    N("entry_edx", offsetof(kvm_cpuid_entry2, edx)),
  }));
  l.Set("routing", Table(env, {
    N("size", sizeof(kvm_irq_routing)), F(kvm_irq_routing, nr), F(kvm_irq_routing, flags),
    F(kvm_irq_routing, entries), N("entry_size", sizeof(kvm_irq_routing_entry)),
    N("entry_gsi", offsetof(kvm_irq_routing_entry, gsi)), N("entry_type", offsetof(kvm_irq_routing_entry, type)),
    N("entry_flags", offsetof(kvm_irq_routing_entry, flags)),
    N("irqchip_irqchip", offsetof(kvm_irq_routing_entry, u.irqchip.irqchip)),
    N("irqchip_pin", offsetof(kvm_irq_routing_entry, u.irqchip.pin)),
    N("msi_address_lo", offsetof(kvm_irq_routing_entry, u.msi.address_lo)),
    N("msi_address_hi", offsetof(kvm_irq_routing_entry, u.msi.address_hi)),
    N("msi_data", offsetof(kvm_irq_routing_entry, u.msi.data)),
    N("msi_devid", offsetof(kvm_irq_routing_entry, u.msi.devid)),
  }));
  l.Set("lapic", Table(env, {N("size", sizeof(kvm_lapic_state)), F(kvm_lapic_state, regs)}));
  l.Set("vcpuEvents", Table(env, {
    N("size", sizeof(kvm_vcpu_events)),
    N("exception_injected", offsetof(kvm_vcpu_events, exception.injected)),
    N("exception_nr", offsetof(kvm_vcpu_events, exception.nr)),
    N("exception_has_error_code", offsetof(kvm_vcpu_events, exception.has_error_code)),
    N("exception_pending", offsetof(kvm_vcpu_events, exception.pending)),
    N("exception_error_code", offsetof(kvm_vcpu_events, exception.error_code)),
    N("interrupt_injected", offsetof(kvm_vcpu_events, interrupt.injected)),
    N("interrupt_nr", offsetof(kvm_vcpu_events, interrupt.nr)),
    N("interrupt_soft", offsetof(kvm_vcpu_events, interrupt.soft)),
    N("interrupt_shadow", offsetof(kvm_vcpu_events, interrupt.shadow)),
    N("nmi_injected", offsetof(kvm_vcpu_events, nmi.injected)),
    N("nmi_pending", offsetof(kvm_vcpu_events, nmi.pending)),
    N("nmi_masked", offsetof(kvm_vcpu_events, nmi.masked)),
    N("sipi_vector", offsetof(kvm_vcpu_events, sipi_vector)),
    N("flags", offsetof(kvm_vcpu_events, flags)),
  }));
  exports.Set("layout", l);

  exports.Set("constants", Table(env, {
    N("KVM_API_VERSION", KVM_API_VERSION),
    N("KVM_CAP_IRQCHIP", KVM_CAP_IRQCHIP), N("KVM_CAP_USER_MEMORY", KVM_CAP_USER_MEMORY),
    N("KVM_CAP_SET_TSS_ADDR", KVM_CAP_SET_TSS_ADDR), N("KVM_CAP_EXT_CPUID", KVM_CAP_EXT_CPUID),
    N("KVM_CAP_NR_VCPUS", KVM_CAP_NR_VCPUS), N("KVM_CAP_NR_MEMSLOTS", KVM_CAP_NR_MEMSLOTS),
    N("KVM_CAP_IRQ_ROUTING", KVM_CAP_IRQ_ROUTING), N("KVM_CAP_IRQFD", KVM_CAP_IRQFD),
    N("KVM_CAP_PIT2", KVM_CAP_PIT2), N("KVM_CAP_IOEVENTFD", KVM_CAP_IOEVENTFD),
    N("KVM_CAP_SET_IDENTITY_MAP_ADDR", KVM_CAP_SET_IDENTITY_MAP_ADDR),
    N("KVM_CAP_VCPU_EVENTS", KVM_CAP_VCPU_EVENTS), N("KVM_CAP_MAX_VCPUS", KVM_CAP_MAX_VCPUS),
    N("KVM_CAP_SIGNAL_MSI", KVM_CAP_SIGNAL_MSI), N("KVM_CAP_IRQFD_RESAMPLE", KVM_CAP_IRQFD_RESAMPLE),
    N("KVM_CAP_IMMEDIATE_EXIT", KVM_CAP_IMMEDIATE_EXIT),
    N("KVM_EXIT_UNKNOWN", KVM_EXIT_UNKNOWN), N("KVM_EXIT_EXCEPTION", KVM_EXIT_EXCEPTION),
    N("KVM_EXIT_IO", KVM_EXIT_IO), N("KVM_EXIT_HYPERCALL", KVM_EXIT_HYPERCALL), N("KVM_EXIT_DEBUG", KVM_EXIT_DEBUG),
    N("KVM_EXIT_HLT", KVM_EXIT_HLT), N("KVM_EXIT_MMIO", KVM_EXIT_MMIO),
    N("KVM_EXIT_IRQ_WINDOW_OPEN", KVM_EXIT_IRQ_WINDOW_OPEN), N("KVM_EXIT_SHUTDOWN", KVM_EXIT_SHUTDOWN),
    N("KVM_EXIT_FAIL_ENTRY", KVM_EXIT_FAIL_ENTRY), N("KVM_EXIT_INTR", KVM_EXIT_INTR),
    N("KVM_EXIT_NMI", KVM_EXIT_NMI), N("KVM_EXIT_INTERNAL_ERROR", KVM_EXIT_INTERNAL_ERROR),
    N("KVM_EXIT_SYSTEM_EVENT", KVM_EXIT_SYSTEM_EVENT), N("KVM_EXIT_IOAPIC_EOI", KVM_EXIT_IOAPIC_EOI),
    N("KVM_EXIT_X86_RDMSR", KVM_EXIT_X86_RDMSR), N("KVM_EXIT_X86_WRMSR", KVM_EXIT_X86_WRMSR),
    N("KVM_EXIT_IO_IN", KVM_EXIT_IO_IN), N("KVM_EXIT_IO_OUT", KVM_EXIT_IO_OUT),
    N("KVM_INTERNAL_ERROR_EMULATION", KVM_INTERNAL_ERROR_EMULATION),
    N("KVM_SYSTEM_EVENT_SHUTDOWN", KVM_SYSTEM_EVENT_SHUTDOWN), N("KVM_SYSTEM_EVENT_RESET", KVM_SYSTEM_EVENT_RESET),
    N("KVM_SYSTEM_EVENT_CRASH", KVM_SYSTEM_EVENT_CRASH),
    N("KVM_MEM_LOG_DIRTY_PAGES", KVM_MEM_LOG_DIRTY_PAGES), N("KVM_MEM_READONLY", KVM_MEM_READONLY),
    N("KVM_PIT_SPEAKER_DUMMY", KVM_PIT_SPEAKER_DUMMY),
    N("KVM_IRQ_ROUTING_IRQCHIP", KVM_IRQ_ROUTING_IRQCHIP), N("KVM_IRQ_ROUTING_MSI", KVM_IRQ_ROUTING_MSI),
    N("KVM_IRQCHIP_PIC_MASTER", KVM_IRQCHIP_PIC_MASTER), N("KVM_IRQCHIP_PIC_SLAVE", KVM_IRQCHIP_PIC_SLAVE),
    N("KVM_IRQCHIP_IOAPIC", KVM_IRQCHIP_IOAPIC),
    N("KVM_IRQFD_FLAG_DEASSIGN", KVM_IRQFD_FLAG_DEASSIGN), N("KVM_IRQFD_FLAG_RESAMPLE", KVM_IRQFD_FLAG_RESAMPLE),
    N("KVM_IOEVENTFD_FLAG_DATAMATCH", KVM_IOEVENTFD_FLAG_DATAMATCH),
    N("KVM_IOEVENTFD_FLAG_PIO", KVM_IOEVENTFD_FLAG_PIO),
    N("KVM_IOEVENTFD_FLAG_DEASSIGN", KVM_IOEVENTFD_FLAG_DEASSIGN),
    N("KVM_CPUID_FLAG_SIGNIFCANT_INDEX", KVM_CPUID_FLAG_SIGNIFCANT_INDEX),
  }));
}

}  // namespace xdpvm
