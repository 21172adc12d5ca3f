// Typed view of native/kvm: /dev/kvm, VM and vCPU ioctls, the kvm_run
// mapping and the vCPU kick signal (fds, mappings, eventfd and epoll are in
// ./sys). Struct arguments are caller-encoded bytes laid out with `layout`
// (offsets taken from the kernel headers by the addon). Errors thrown by it
// carry `code` (the errno name), `errno` and `syscall`; calls documented as
// "-errno" return it instead.
import { loadAddon } from './load';

export interface RunLayout {
  size: number;
  request_interrupt_window: number;
  immediate_exit: number;
  exit_reason: number;
  ready_for_interrupt_injection: number;
  if_flag: number;
  flags: number;
  cr8: number;
  apic_base: number;
  hw_hardware_exit_reason: number;
  fail_entry_reason: number;
  fail_entry_cpu: number;
  ex_exception: number;
  ex_error_code: number;
  io_direction: number;
  io_size: number;
  io_port: number;
  io_count: number;
  io_data_offset: number;
  mmio_phys_addr: number;
  mmio_data: number;
  mmio_len: number;
  mmio_is_write: number;
  internal_suberror: number;
  internal_ndata: number;
  internal_data: number;
  system_event_type: number;
  system_event_ndata: number;
  system_event_data: number;
}

export type RegName =
  | 'rax' | 'rbx' | 'rcx' | 'rdx' | 'rsi' | 'rdi' | 'rsp' | 'rbp'
  | 'r8' | 'r9' | 'r10' | 'r11' | 'r12' | 'r13' | 'r14' | 'r15' | 'rip' | 'rflags';
export type SegmentName = 'cs' | 'ds' | 'es' | 'fs' | 'gs' | 'ss' | 'tr' | 'ldt';
export type SegmentField = 'base' | 'limit' | 'selector' | 'type' | 'present' | 'dpl' | 'db' | 's' | 'l' | 'g' | 'avl' | 'unusable';

export interface KvmLayout {
  run: RunLayout;
  regs: Record<RegName | 'size', number>;
  segment: Record<SegmentField | 'size', number>;
  dtable: { size: number; base: number; limit: number };
  sregs: Record<
    SegmentName | 'gdt' | 'idt' | 'cr0' | 'cr2' | 'cr3' | 'cr4' | 'cr8' | 'efer' | 'apic_base' | 'interrupt_bitmap' | 'size',
    number
  >;
  fpu: Record<'size' | 'fpr' | 'fcw' | 'fsw' | 'ftwx' | 'last_opcode' | 'last_ip' | 'last_dp' | 'xmm' | 'mxcsr', number>;
  msrs: Record<'size' | 'nmsrs' | 'entries' | 'entry_size' | 'entry_index' | 'entry_data', number>;
  cpuid2: Record<
    | 'size' | 'nent' | 'entries' | 'entry_size' | 'entry_function' | 'entry_index' | 'entry_flags'
    | 'entry_eax' | 'entry_ebx' | 'entry_ecx' | 'entry_edx',
    number
  >;
  routing: Record<
    | 'size' | 'nr' | 'flags' | 'entries' | 'entry_size' | 'entry_gsi' | 'entry_type' | 'entry_flags'
    | 'irqchip_irqchip' | 'irqchip_pin' | 'msi_address_lo' | 'msi_address_hi' | 'msi_data' | 'msi_devid',
    number
  >;
  lapic: { size: number; regs: number };
  vcpuEvents: Record<
    | 'size' | 'exception_injected' | 'exception_nr' | 'exception_has_error_code' | 'exception_pending'
    | 'exception_error_code' | 'interrupt_injected' | 'interrupt_nr' | 'interrupt_soft' | 'interrupt_shadow'
    | 'nmi_injected' | 'nmi_pending' | 'nmi_masked' | 'sipi_vector' | 'flags',
    number
  >;
}

/** ABI constants as compiled into the addon (the TypeScript enums must agree; a test checks). */
export type KvmConstantName =
  | 'KVM_API_VERSION'
  | 'KVM_CAP_IRQCHIP' | 'KVM_CAP_USER_MEMORY' | 'KVM_CAP_SET_TSS_ADDR' | 'KVM_CAP_EXT_CPUID' | 'KVM_CAP_NR_VCPUS'
  | 'KVM_CAP_NR_MEMSLOTS' | 'KVM_CAP_IRQ_ROUTING' | 'KVM_CAP_IRQFD' | 'KVM_CAP_PIT2' | 'KVM_CAP_IOEVENTFD'
  | 'KVM_CAP_SET_IDENTITY_MAP_ADDR' | 'KVM_CAP_VCPU_EVENTS' | 'KVM_CAP_MAX_VCPUS' | 'KVM_CAP_SIGNAL_MSI'
  | 'KVM_CAP_IRQFD_RESAMPLE' | 'KVM_CAP_IMMEDIATE_EXIT'
  | 'KVM_EXIT_UNKNOWN' | 'KVM_EXIT_EXCEPTION' | 'KVM_EXIT_IO' | 'KVM_EXIT_HYPERCALL' | 'KVM_EXIT_DEBUG'
  | 'KVM_EXIT_HLT' | 'KVM_EXIT_MMIO' | 'KVM_EXIT_IRQ_WINDOW_OPEN' | 'KVM_EXIT_SHUTDOWN' | 'KVM_EXIT_FAIL_ENTRY'
  | 'KVM_EXIT_INTR' | 'KVM_EXIT_NMI' | 'KVM_EXIT_INTERNAL_ERROR' | 'KVM_EXIT_SYSTEM_EVENT' | 'KVM_EXIT_IOAPIC_EOI'
  | 'KVM_EXIT_X86_RDMSR' | 'KVM_EXIT_X86_WRMSR' | 'KVM_EXIT_IO_IN' | 'KVM_EXIT_IO_OUT'
  | 'KVM_INTERNAL_ERROR_EMULATION' | 'KVM_SYSTEM_EVENT_SHUTDOWN' | 'KVM_SYSTEM_EVENT_RESET' | 'KVM_SYSTEM_EVENT_CRASH'
  | 'KVM_MEM_LOG_DIRTY_PAGES' | 'KVM_MEM_READONLY' | 'KVM_PIT_SPEAKER_DUMMY'
  | 'KVM_IRQ_ROUTING_IRQCHIP' | 'KVM_IRQ_ROUTING_MSI'
  | 'KVM_IRQCHIP_PIC_MASTER' | 'KVM_IRQCHIP_PIC_SLAVE' | 'KVM_IRQCHIP_IOAPIC'
  | 'KVM_IRQFD_FLAG_DEASSIGN' | 'KVM_IRQFD_FLAG_RESAMPLE'
  | 'KVM_IOEVENTFD_FLAG_DATAMATCH' | 'KVM_IOEVENTFD_FLAG_PIO' | 'KVM_IOEVENTFD_FLAG_DEASSIGN'
  | 'KVM_CPUID_FLAG_SIGNIFCANT_INDEX';

/** Bytes handed to a struct ioctl: a TypedArray (any offset) or a whole ArrayBuffer. */
export type StructBytes = ArrayBufferView | ArrayBuffer;

export interface KvmAddon {
  // System (/dev/kvm).
  open(path?: string): number;
  getApiVersion(kvmFd: number): number;
  checkExtension(fd: number, cap: number): number;
  createVm(kvmFd: number, type?: number): number;
  getVcpuMmapSize(kvmFd: number): number;
  /** Fills a kvm_cpuid2 whose capacity is the buffer's; returns the entry count. */
  getSupportedCpuid(kvmFd: number, cpuid2: StructBytes): number;

  // VM.
  /** `memory` null deletes the slot. */
  setUserMemoryRegion(vmFd: number, slot: number, flags: number, guestPhysAddr: number, memory: StructBytes | null): void;
  createIrqchip(vmFd: number): void;
  createPit2(vmFd: number, flags?: number): void;
  setTssAddr(vmFd: number, addr: number): void;
  setIdentityMapAddr(vmFd: number, addr: number): void;
  setGsiRouting(vmFd: number, routing: StructBytes): void;
  irqfd(vmFd: number, eventfd: number, gsi: number, flags?: number, resampleFd?: number): void;
  ioeventfd(vmFd: number, addr: number, len: number, eventfd: number, flags: number, datamatch?: number | bigint): void;
  /** >0 delivered, 0 blocked by the guest. */
  signalMsi(vmFd: number, addressLo: number, addressHi: number, data: number): number;
  irqLine(vmFd: number, irq: number, level: number): void;
  createVcpu(vmFd: number, id: number): number;
  /** KVM_REGISTER_COALESCED_MMIO (or, with unregister, KVM_UNREGISTER_...): writes in the zone are logged in the ring instead of exiting. */
  registerCoalescedIo(vmFd: number, addr: number, size: number, pio: boolean, unregister?: boolean): void;

  // vCPU.
  mapRun(vcpuFd: number, size: number): ArrayBuffer;
  /** 0 or -errno (-EINTR after a kick or a signal). */
  run(vcpuFd: number): number;
  getRegs(vcpuFd: number, regs: StructBytes): void;
  setRegs(vcpuFd: number, regs: StructBytes): void;
  getSregs(vcpuFd: number, sregs: StructBytes): void;
  setSregs(vcpuFd: number, sregs: StructBytes): void;
  getFpu(vcpuFd: number, fpu: StructBytes): void;
  setFpu(vcpuFd: number, fpu: StructBytes): void;
  getLapic(vcpuFd: number, lapic: StructBytes): void;
  setLapic(vcpuFd: number, lapic: StructBytes): void;
  getVcpuEvents(vcpuFd: number, events: StructBytes): void;
  /** struct kvm_mp_state (one u32). */
  getMpState(vcpuFd: number, state: StructBytes): void;
  setMpState(vcpuFd: number, state: StructBytes): void;
  setVcpuEvents(vcpuFd: number, events: StructBytes): void;
  /** Returns how many entries the kernel processed. */
  getMsrs(vcpuFd: number, msrs: StructBytes): number;
  setMsrs(vcpuFd: number, msrs: StructBytes): number;
  setCpuid2(vcpuFd: number, cpuid2: StructBytes): void;
  getCpuid2(vcpuFd: number, cpuid2: StructBytes): number;

  // Kicking a thread out of KVM_RUN (or epoll_wait).
  vcpuThreadId(): number;
  kickThread(tid: number): number;
  readonly kickSignal: number;

  readonly layout: KvmLayout;
  readonly constants: Readonly<Record<KvmConstantName, number>>;
}

export const kvmNative: KvmAddon = loadAddon<KvmAddon>('kvm');
