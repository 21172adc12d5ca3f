// What kind of kernel file -kernel names: a Linux bzImage (setup header
// magic "HdrS" at 0x202, boot protocol §"The real-mode kernel header"), a
// Linux vmlinux ELF (entry in the kernel's virtual address range), or a
// bare-metal ELF such as the PMD test guest.
import { Elf64File, ElfError, isElf } from '../../elf/elf64';

export type KernelKind = 'bzimage' | 'vmlinux' | 'bare-metal-elf';

const HDRS = 0x53726448;
const LINUX_VIRTUAL_BASE = 0xffff_ffff_8000_0000n;

export function detectKernelKind(image: Uint8Array): KernelKind | undefined {
  if (image.length < 64) return undefined;
  if (isElf(image)) {
    let entry: bigint;
    try {
      entry = new Elf64File(image).header.entry;
    } catch (e) {
      if (e instanceof ElfError) return undefined; // 64-bit little-endian only
      throw e;
    }
    return entry >= LINUX_VIRTUAL_BASE ? 'vmlinux' : 'bare-metal-elf';
  }
  const dv = new DataView(image.buffer, image.byteOffset, image.byteLength);
  if (image.length >= 0x206 && dv.getUint32(0x202, true) === HDRS) return 'bzimage';
  return undefined;
}
