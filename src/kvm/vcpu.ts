// A vCPU: KVM_RUN, allocation-free decoding of the exit in kvm_run, the
// kick that gets its thread out of KVM_RUN, and register/MSR/CPUID/LAPIC state.
//
// Threads: run() blocks, so it is called from the vCPU's worker thread,
// which gets the vCPU with Vcpu.attach(handle) and calls bindThread() once.
// Any other thread may kick() it. Other vCPU ioctls (registers, LAPIC) may
// be issued from any thread; the kernel serialises them with KVM_RUN.
import { kvmNative } from '../native/kvm';
import { EINTR, errnoError, sys } from '../native/sys';
import { cpuidBuffer, decodeCpuid, encodeCpuid, MAX_CPUID_ENTRIES, type CpuidEntry } from './cpuid';
import { decodeMsrs, encodeMsrs, type MsrEntry } from './msr';
import {
  decodeFpu, decodeRegs, decodeSregs, encodeFpu, encodeRegs, encodeSregs,
  FPU_SIZE, REGS_SIZE, SREGS_SIZE, type Fpu, type Regs, type Sregs,
} from './regs';

/** KVM_EXIT_* (linux/kvm.h). */
export const enum ExitReason {
  Unknown = 0,
  Exception = 1,
  Io = 2,
  Hypercall = 3,
  Debug = 4,
  Hlt = 5,
  Mmio = 6,
  IrqWindowOpen = 7,
  Shutdown = 8,
  FailEntry = 9,
  /** KVM_RUN returned EINTR: a kick, immediate_exit or another signal. */
  Intr = 10,
  Nmi = 16,
  InternalError = 17,
  SystemEvent = 24,
  IoapicEoi = 26,
  X86Rdmsr = 29,
  X86Wrmsr = 30,
}

export const enum IoDirection {
  In = 0,
  Out = 1,
}

/** kvm_run.internal.suberror values. */
export const enum InternalError {
  Emulation = 1,
  SimultaneousExceptions = 2,
  DeliveryEvent = 3,
  UnexpectedExitReason = 4,
}

export const enum SystemEvent {
  Shutdown = 1,
  Reset = 2,
  Crash = 3,
}

/** KVM_MP_STATE_* values. */
export const enum MpState {
  Runnable = 0,
  Uninitialized = 1,
  InitReceived = 2,
  Halted = 3,
  SipiReceived = 4,
}

export interface VcpuEvents {
  exception: { injected: number; nr: number; hasErrorCode: number; pending: number; errorCode: number };
  interrupt: { injected: number; nr: number; soft: number; shadow: number };
  nmi: { injected: number; pending: number; masked: number };
  sipiVector: number;
  flags: number;
}

/** What another thread needs to drive this vCPU (structured-clone safe: pass it as workerData). */
export interface VcpuHandle {
  fd: number;
  id: number;
  runAddress: bigint;
  runSize: number;
  /** Int32 [0]: thread id of the bound vCPU thread, 0 when none. */
  control: SharedArrayBuffer;
}

const RL = kvmNative.layout.run;
const EV = kvmNative.layout.vcpuEvents;
const LAPIC_SIZE = kvmNative.layout.lapic.size;

export class Vcpu {
  /** The kvm_run area (this thread's view). */
  readonly runArea: ArrayBuffer;
  /** Bytes of kvm_run: KVM_EXIT_IO data lives at runBytes[ioDataOffset...]. */
  readonly runBytes: Uint8Array;
  /** kvm_run.mmio.data (8 bytes). */
  readonly mmioData: Uint8Array;
  private readonly dv: DataView;
  private readonly control: Int32Array;
  private closed = false;
  private scratch: { regs?: Uint8Array; sregs?: Uint8Array; fpu?: Uint8Array } = {};

  private constructor(
    readonly fd: number,
    readonly id: number,
    runArea: ArrayBuffer,
    private readonly controlBuffer: SharedArrayBuffer,
    private readonly owner: boolean,
  ) {
    this.runArea = runArea;
    this.runBytes = new Uint8Array(runArea);
    this.mmioData = new Uint8Array(runArea, RL.mmio_data, 8);
    this.dv = new DataView(runArea);
    this.control = new Int32Array(controlBuffer);
  }

  /** Creates vCPU `id` in a VM and maps its kvm_run area (used by Vm.createVcpu). */
  static create(vmFd: number, id: number, runSize: number): Vcpu {
    const fd = kvmNative.createVcpu(vmFd, id);
    let run: ArrayBuffer;
    try {
      run = kvmNative.mapRun(fd, runSize);
    } catch (e) {
      sys.close(fd);
      throw e;
    }
    return new Vcpu(fd, id, run, new SharedArrayBuffer(4), true);
  }

  /** The same vCPU in another thread. It does not own the fd or the mapping. */
  static attach(h: VcpuHandle): Vcpu {
    return new Vcpu(h.fd, h.id, sys.alias(h.runAddress, h.runSize), h.control, false);
  }

  handle(): VcpuHandle {
    return {
      fd: this.fd,
      id: this.id,
      runAddress: sys.addressOf(this.runArea),
      runSize: this.runArea.byteLength,
      control: this.controlBuffer,
    };
  }

  // --- running ---

  /**
   * Enters the guest until the next exit and returns why it exited. On
   * ExitReason.Intr (kicked or signalled) immediate_exit has been cleared:
   * look at your stop/pause state before calling run() again.
   */
  run(): ExitReason {
    const r = kvmNative.run(this.fd);
    if (r === 0) return this.dv.getUint32(RL.exit_reason, true);
    if (r === -EINTR) {
      Atomics.store(this.runBytes, RL.immediate_exit, 0);
      return ExitReason.Intr;
    }
    throw errnoError(`KVM_RUN(vcpu ${this.id})`, -r);
  }

  /** Makes the calling thread the one kick() interrupts. Call in the thread that calls run(). */
  bindThread(): void {
    Atomics.store(this.control, 0, kvmNative.vcpuThreadId());
  }

  /** Call before the vCPU thread ends, so that a kick never reaches a recycled thread id. */
  unbindThread(): void {
    Atomics.store(this.control, 0, 0);
  }

  /**
   * From any thread: makes run() return ExitReason.Intr soon. Sets
   * immediate_exit (covers a thread about to enter KVM_RUN) and signals the
   * bound thread (covers one already inside it).
   */
  kick(): void {
    Atomics.store(this.runBytes, RL.immediate_exit, 1);
    const tid = Atomics.load(this.control, 0);
    if (tid !== 0) kvmNative.kickThread(tid);
  }

  get immediateExit(): boolean {
    return Atomics.load(this.runBytes, RL.immediate_exit) !== 0;
  }

  // --- the last exit (valid until the next run()) ---

  get exitReason(): ExitReason {
    return this.dv.getUint32(RL.exit_reason, true);
  }

  get requestInterruptWindow(): boolean {
    return this.runBytes[RL.request_interrupt_window] !== 0;
  }

  set requestInterruptWindow(on: boolean) {
    this.runBytes[RL.request_interrupt_window] = on ? 1 : 0;
  }

  get readyForInterruptInjection(): boolean {
    return this.runBytes[RL.ready_for_interrupt_injection] !== 0;
  }

  get ifFlag(): boolean {
    return this.runBytes[RL.if_flag] !== 0;
  }

  get ioDirection(): IoDirection {
    return this.runBytes[RL.io_direction] as IoDirection;
  }

  /** Bytes per access: 1, 2 or 4. */
  get ioSize(): number {
    return this.runBytes[RL.io_size]!;
  }

  get ioPort(): number {
    return this.dv.getUint16(RL.io_port, true);
  }

  /** Accesses in this exit (more than 1 for rep ins/outs). */
  get ioCount(): number {
    return this.dv.getUint32(RL.io_count, true);
  }

  /** Offset of the data in runBytes (ioCount * ioSize bytes). */
  get ioDataOffset(): number {
    return this.dv.getUint32(RL.io_data_offset, true);
  }

  /** The value of the (first) OUT access. */
  get ioValue(): number {
    return this.readData(this.ioDataOffset, this.ioSize);
  }

  /** Sets what the (first) IN access reads. */
  set ioValue(v: number) {
    this.writeData(this.ioDataOffset, this.ioSize, v);
  }

  /** Guest-physical address (a double: physical addresses stay below 2^52). */
  get mmioAddress(): number {
    return this.dv.getUint32(RL.mmio_phys_addr, true) + this.dv.getUint32(RL.mmio_phys_addr + 4, true) * 2 ** 32;
  }

  get mmioLen(): number {
    return this.dv.getUint32(RL.mmio_len, true);
  }

  get mmioIsWrite(): boolean {
    return this.runBytes[RL.mmio_is_write] !== 0;
  }

  /** The written value (an 8-byte value above 2^53 loses precision: use mmioData then). */
  get mmioValue(): number {
    return this.readData(RL.mmio_data, this.mmioLen);
  }

  /** Sets what an MMIO read returns. */
  set mmioValue(v: number) {
    this.writeData(RL.mmio_data, this.mmioLen, v);
  }

  get internalSuberror(): number {
    return this.dv.getUint32(RL.internal_suberror, true);
  }

  get internalNdata(): number {
    return this.dv.getUint32(RL.internal_ndata, true);
  }

  internalData(i: number): bigint {
    return this.dv.getBigUint64(RL.internal_data + 8 * i, true);
  }

  get systemEventType(): number {
    return this.dv.getUint32(RL.system_event_type, true);
  }

  get failEntryReason(): bigint {
    return this.dv.getBigUint64(RL.fail_entry_reason, true);
  }

  get exceptionNumber(): number {
    return this.dv.getUint32(RL.ex_exception, true);
  }

  get exceptionErrorCode(): number {
    return this.dv.getUint32(RL.ex_error_code, true);
  }

  private readData(off: number, len: number): number {
    switch (len) {
      case 1:
        return this.runBytes[off]!;
      case 2:
        return this.dv.getUint16(off, true);
      case 4:
        return this.dv.getUint32(off, true);
      case 8:
        return this.dv.getUint32(off, true) + this.dv.getUint32(off + 4, true) * 2 ** 32;
      default:
        return 0;
    }
  }

  private writeData(off: number, len: number, v: number): void {
    switch (len) {
      case 1:
        this.runBytes[off] = v;
        break;
      case 2:
        this.dv.setUint16(off, v, true);
        break;
      case 4:
        this.dv.setUint32(off, v >>> 0, true);
        break;
      case 8:
        this.dv.setUint32(off, v >>> 0, true);
        this.dv.setUint32(off + 4, Math.floor(v / 2 ** 32) >>> 0, true);
        break;
      default:
        break;
    }
  }

  // --- state ---

  getRegs(): Regs {
    const b = (this.scratch.regs ??= new Uint8Array(REGS_SIZE));
    kvmNative.getRegs(this.fd, b);
    return decodeRegs(b);
  }

  setRegs(r: Regs): void {
    kvmNative.setRegs(this.fd, encodeRegs(r, (this.scratch.regs ??= new Uint8Array(REGS_SIZE))));
  }

  getSregs(): Sregs {
    const b = (this.scratch.sregs ??= new Uint8Array(SREGS_SIZE));
    kvmNative.getSregs(this.fd, b);
    return decodeSregs(b);
  }

  setSregs(s: Sregs): void {
    kvmNative.setSregs(this.fd, encodeSregs(s, (this.scratch.sregs ??= new Uint8Array(SREGS_SIZE))));
  }

  getFpu(): Fpu {
    const b = (this.scratch.fpu ??= new Uint8Array(FPU_SIZE));
    kvmNative.getFpu(this.fd, b);
    return decodeFpu(b);
  }

  setFpu(f: Fpu): void {
    kvmNative.setFpu(this.fd, encodeFpu(f, (this.scratch.fpu ??= new Uint8Array(FPU_SIZE))));
  }

  /** Reads the MSRs named by `indices`; throws naming the first one KVM refuses. */
  getMsrs(indices: readonly number[]): MsrEntry[] {
    const buf = encodeMsrs(indices.map((index) => ({ index, data: 0n })));
    const n = kvmNative.getMsrs(this.fd, buf);
    if (n < indices.length) throw new Error(`KVM_GET_MSRS: MSR 0x${indices[n]!.toString(16)} not readable`);
    return decodeMsrs(buf, n);
  }

  /** Writes MSRs; throws naming the first one KVM refuses. */
  setMsrs(entries: readonly MsrEntry[]): void {
    const n = kvmNative.setMsrs(this.fd, encodeMsrs(entries));
    if (n < entries.length) throw new Error(`KVM_SET_MSRS: MSR 0x${entries[n]!.index.toString(16)} not writable`);
  }

  /** The guest's CPUID (KVM_SET_CPUID2): before the first run(). */
  setCpuid(entries: readonly CpuidEntry[]): void {
    kvmNative.setCpuid2(this.fd, encodeCpuid(entries));
  }

  /** What KVM holds as the guest's CPUID (KVM_GET_CPUID2). */
  getCpuid(): CpuidEntry[] {
    const buf = cpuidBuffer(MAX_CPUID_ENTRIES);
    return decodeCpuid(buf, kvmNative.getCpuid2(this.fd, buf));
  }

  /** A copy of the local APIC register page (see lapic.ts). */
  getLapic(): Uint8Array {
    const b = new Uint8Array(LAPIC_SIZE);
    kvmNative.getLapic(this.fd, b);
    return b;
  }

  setLapic(regs: Uint8Array): void {
    kvmNative.setLapic(this.fd, regs);
  }

  /** KVM_MP_STATE_* (0 runnable, 1 uninitialized: an AP waiting for INIT/SIPI, 3 halted...). */
  getMpState(): number {
    const b = new Uint32Array(1);
    kvmNative.getMpState(this.fd, new Uint8Array(b.buffer));
    return b[0]!;
  }

  /** Makes an application processor run at once instead of waiting for INIT/SIPI (bare-metal guests). */
  setMpState(state: MpState): void {
    kvmNative.setMpState(this.fd, new Uint8Array(Uint32Array.of(state).buffer));
  }

  getVcpuEvents(): VcpuEvents {
    const b = new Uint8Array(EV.size);
    kvmNative.getVcpuEvents(this.fd, b);
    const dv = new DataView(b.buffer);
    const u8 = (o: number): number => dv.getUint8(o);
    return {
      exception: {
        injected: u8(EV.exception_injected),
        nr: u8(EV.exception_nr),
        hasErrorCode: u8(EV.exception_has_error_code),
        pending: u8(EV.exception_pending),
        errorCode: dv.getUint32(EV.exception_error_code, true),
      },
      interrupt: {
        injected: u8(EV.interrupt_injected),
        nr: u8(EV.interrupt_nr),
        soft: u8(EV.interrupt_soft),
        shadow: u8(EV.interrupt_shadow),
      },
      nmi: { injected: u8(EV.nmi_injected), pending: u8(EV.nmi_pending), masked: u8(EV.nmi_masked) },
      sipiVector: dv.getUint32(EV.sipi_vector, true),
      flags: dv.getUint32(EV.flags, true),
    };
  }

  /** Unmaps kvm_run and closes the fd (owner only; attached copies just drop their view). */
  close(): void {
    if (this.closed || !this.owner) return;
    this.closed = true;
    sys.unmap(this.runArea);
    sys.close(this.fd);
  }
}
