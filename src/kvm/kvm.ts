// The KVM system handle (/dev/kvm): API version, capabilities, supported
// CPUID, VM creation.
import { kvmNative } from '../native/kvm';
import { sys } from '../native/sys';
import { cpuidBuffer, decodeCpuid, MAX_CPUID_ENTRIES, type CpuidEntry } from './cpuid';
import { Vm } from './vm';

/** The only KVM API version there has ever been in mainline. */
export const KVM_API_VERSION = 12;

/** KVM_CAP_* (linux/kvm.h) that this VMM uses. */
export const enum Cap {
  Irqchip = 0,
  UserMemory = 3,
  SetTssAddr = 4,
  ExtCpuid = 7,
  NrVcpus = 9,
  NrMemslots = 10,
  /** The kvm_run mapping's page that holds the coalesced-write ring (its page offset), or 0. */
  CoalescedMmio = 15,
  IrqRouting = 25,
  Irqfd = 32,
  Pit2 = 33,
  Ioeventfd = 36,
  SetIdentityMapAddr = 37,
  VcpuEvents = 41,
  MaxVcpus = 66,
  SignalMsi = 77,
  IrqfdResample = 82,
  ImmediateExit = 136,
  CoalescedPio = 162,
}

export const CAP_NAMES: Readonly<Record<number, string>> = {
  [Cap.Irqchip]: 'IRQCHIP',
  [Cap.UserMemory]: 'USER_MEMORY',
  [Cap.SetTssAddr]: 'SET_TSS_ADDR',
  [Cap.ExtCpuid]: 'EXT_CPUID',
  [Cap.NrVcpus]: 'NR_VCPUS',
  [Cap.NrMemslots]: 'NR_MEMSLOTS',
  [Cap.CoalescedMmio]: 'COALESCED_MMIO',
  [Cap.IrqRouting]: 'IRQ_ROUTING',
  [Cap.Irqfd]: 'IRQFD',
  [Cap.Pit2]: 'PIT2',
  [Cap.Ioeventfd]: 'IOEVENTFD',
  [Cap.SetIdentityMapAddr]: 'SET_IDENTITY_MAP_ADDR',
  [Cap.VcpuEvents]: 'VCPU_EVENTS',
  [Cap.MaxVcpus]: 'MAX_VCPUS',
  [Cap.SignalMsi]: 'SIGNAL_MSI',
  [Cap.IrqfdResample]: 'IRQFD_RESAMPLE',
  [Cap.ImmediateExit]: 'IMMEDIATE_EXIT',
  [Cap.CoalescedPio]: 'COALESCED_PIO',
};

/** What the VM and vCPU code here relies on. */
export const REQUIRED_CAPS: readonly Cap[] = [
  Cap.UserMemory, Cap.Irqchip, Cap.IrqRouting, Cap.Irqfd, Cap.Ioeventfd, Cap.SignalMsi, Cap.ImmediateExit,
];

export class Kvm {
  private closed = false;
  private mmapSize = 0;

  private constructor(
    readonly fd: number,
    readonly path: string,
  ) {}

  /** Opens /dev/kvm and insists on API version 12. */
  static open(path = '/dev/kvm'): Kvm {
    const fd = kvmNative.open(path);
    try {
      const v = kvmNative.getApiVersion(fd);
      if (v !== KVM_API_VERSION) throw new Error(`${path}: KVM API version ${v}, expected ${KVM_API_VERSION}`);
    } catch (e) {
      sys.close(fd);
      throw e;
    }
    return new Kvm(fd, path);
  }

  apiVersion(): number {
    return kvmNative.getApiVersion(this.fd);
  }

  /** 0 when absent; otherwise 1 or a capability-specific number (e.g. memory slots). */
  checkExtension(cap: Cap): number {
    return kvmNative.checkExtension(this.fd, cap);
  }

  /** Throws one error naming every capability that is missing. */
  requireExtensions(caps: readonly Cap[] = REQUIRED_CAPS): void {
    const missing = caps.filter((c) => this.checkExtension(c) <= 0);
    if (missing.length > 0) {
      throw new Error(`${this.path}: missing KVM capabilities ${missing.map((c) => CAP_NAMES[c] ?? String(c)).join(', ')}`);
    }
  }

  /** Size of each vCPU's kvm_run mapping. */
  vcpuMmapSize(): number {
    if (this.mmapSize === 0) this.mmapSize = kvmNative.getVcpuMmapSize(this.fd);
    return this.mmapSize;
  }

  /** Every CPUID leaf KVM can give a guest, with the bits it can virtualise. */
  supportedCpuid(): CpuidEntry[] {
    const buf = cpuidBuffer(MAX_CPUID_ENTRIES);
    return decodeCpuid(buf, kvmNative.getSupportedCpuid(this.fd, buf));
  }

  createVm(type = 0): Vm {
    const size = this.vcpuMmapSize();
    return new Vm(kvmNative.createVm(this.fd, type), size);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    sys.close(this.fd);
  }
}
