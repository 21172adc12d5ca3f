// What kind of kernel file -kernel names: a Linux bzImage (setup header
// magic "HdrS" at 0x202, boot protocol §"The real-mode kernel header"), a
// Linux vmlinux ELF (entry in the kernel's virtual address range), or a
// bare-metal ELF such as the PMD test guest.
export type KernelKind = 'bzimage' | 'vmlinux' | 'bare-metal-elf';

const ELF_MAGIC = 0x464c457f;
const HDRS = 0x53726448;
const LINUX_VIRTUAL_BASE = 0xffff_ffff_8000_0000n;

export function detectKernelKind(image: Uint8Array): KernelKind | undefined {
  if (image.length < 64) return undefined;
  const dv = new DataView(image.buffer, image.byteOffset, image.byteLength);
  if (dv.getUint32(0, true) === ELF_MAGIC) {
    if (image[4] !== 2) return undefined; // ELFCLASS64 only
    return dv.getBigUint64(24, true) >= LINUX_VIRTUAL_BASE ? 'vmlinux' : 'bare-metal-elf';
  }
  if (image.length >= 0x206 && dv.getUint32(0x202, true) === HDRS) return 'bzimage';
  return undefined;
}
