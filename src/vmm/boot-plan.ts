// How `xdpvm run` boots what -kernel names: the Linux boot protocol for a
// bzImage or vmlinux (with an optional initrd), or every vCPU straight into
// a bare-metal ELF such as the PMD test guest. Errors are RunOptionErrors
// naming -kernel or -initrd.
import { MpState } from '../kvm/vcpu';
import type { GuestMemory } from '../memory/guest-memory';
import { applyBootState, hostTscKhz, loadBareMetal, SystemBlockSnapshot } from './loader';
import { FAULT_PORT } from './loader/boot-info';
import { detectKernelKind } from './loader/kernel-kind';
import { loadLinux } from './loader/linux-loader';
import type { BootPlan } from './machine';
import { PCI_MMIO32 } from './memory-layout';
import { RunOptionError } from './run-options';

export function bootPlanFor(
  kernel: Uint8Array,
  kernelPath: string,
  append: string,
  initrd?: { bytes: Uint8Array; path: string },
  iopl: 0 | 3 = 3,
  hosted = false,
): (memory: GuestMemory, cpus: number) => BootPlan {
  const kind = detectKernelKind(kernel);
  if (kind === undefined) throw new RunOptionError(`-kernel: '${kernelPath}' is neither a Linux bzImage/vmlinux nor a 64-bit ELF`);
  if (hosted && kind !== 'bare-metal-elf') throw new RunOptionError(`-accel hosted: runs only the PMD test guest (a bare-metal ELF with a hosted build); '${kernelPath}' is a Linux kernel, which needs KVM`);
  if (iopl !== 3 && kind !== 'bare-metal-elf') throw new RunOptionError(`-iopl: only for a bare-metal ELF ('${kernelPath}' is a Linux kernel, which sets its own flags)`);
  if (kind !== 'bare-metal-elf') {
    // Linux boot protocol: the BSP enters the 64-bit entry; the APs wait for INIT/SIPI from the kernel.
    return (memory, cpus) =>
      loadLinux(memory, cpus, {
        kernel,
        kernelName: kernelPath,
        commandLine: append,
        ...(initrd ? { initrd: initrd.bytes, initrdName: initrd.path } : {}),
      });
  }
  if (initrd) throw new RunOptionError(`-initrd: '${kernelPath}' is a bare-metal ELF, which takes no initrd`);
  return (memory, cpus) => {
    const ram = memory.regionBytes(0);
    const boot = loadBareMetal({ ram, image: kernel, commandLine: append, vcpus: cpus, mmio: PCI_MMIO32, tscKhz: hostTscKhz(), iopl });
    const snapshot = SystemBlockSnapshot.take(ram, boot.layout);
    return {
      systemBlockReport: () => snapshot.describe(ram),
      faultPort: FAULT_PORT,
      bootInfo: boot.vcpus.map((v) => v.bootInfo),
      setupVcpu(vcpu, index) {
        applyBootState(vcpu, boot.vcpus[index]!);
        // Every vCPU enters the image at once: no INIT/SIPI dance for a bare-metal guest.
        if (index > 0) vcpu.setMpState(MpState.Runnable);
      },
    };
  };
}
