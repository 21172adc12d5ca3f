// What the bare-metal loader accepts as a guest image: a static x86-64
// executable whose PT_LOAD segments are copied to guest-physical memory at
// their addresses (guests are identity-mapped, so p_vaddr must equal
// p_paddr). The file is read with the one ELF reader (src/elf/elf64.ts);
// the rules here are the loader's. Everything is checked before anything is
// copied; a bad image is an ElfError naming the field and the values involved.
// References: System V ABI gABI ch. 4 (ELF header, program header), the
// x86-64 psABI (EM_X86_64 = 62).
import {
  Elf64File,
  ElfError,
  EM_X86_64,
  ET_DYN,
  ET_EXEC,
  EV_CURRENT,
  ELF64_EHDR_SIZE,
  ELF64_PHDR_SIZE,
  PF_X,
  PT_DYNAMIC,
  PT_INTERP,
  PT_LOAD,
  toNumber,
} from '../../elf/elf64';
import { hex } from '../../hex';

export { ElfError, PF_R, PF_W, PF_X, PT_LOAD } from '../../elf/elf64';

/** More program headers than any sane static image has; bounds the work a hostile file can cause. */
export const MAX_PROGRAM_HEADERS = 256;

export interface ElfSegment {
  /** Index in the program header table. */
  index: number;
  /** Guest-physical (= virtual) address of the first byte. */
  address: number;
  /** Bytes in memory; bytes past fileSize are zero (.bss). */
  memSize: number;
  fileOffset: number;
  fileSize: number;
  /** PF_R | PF_W | PF_X */
  flags: number;
}

export interface ElfImage {
  entry: number;
  /** PT_LOAD segments with memSize > 0, by address. */
  segments: ElfSegment[];
}

/** Parses and checks an ELF64 x86-64 static executable (the file bytes are not modified). */
export function parseElf64(file: Uint8Array): ElfImage {
  const elf = new Elf64File(file);
  const h = elf.header;
  if (h.identVersion !== EV_CURRENT) throw new ElfError(`EI_VERSION ${h.identVersion} is not EV_CURRENT (1)`);
  if (h.type === ET_DYN) throw new ElfError('e_type ET_DYN: position-independent images are not supported; link a static ET_EXEC at a fixed address');
  if (h.type !== ET_EXEC) throw new ElfError(`e_type ${h.type} is not ET_EXEC (2)`);
  if (h.machine !== EM_X86_64) throw new ElfError(`e_machine ${h.machine} is not EM_X86_64 (62)`);
  if (h.version !== EV_CURRENT) throw new ElfError(`e_version ${h.version} is not EV_CURRENT (1)`);
  const entry = toNumber(h.entry, 'e_entry');
  if (h.ehsize < ELF64_EHDR_SIZE) throw new ElfError(`e_ehsize ${h.ehsize} is smaller than 64`);
  if (h.phnum === 0) throw new ElfError('no program headers (e_phnum 0)');
  if (h.phnum > MAX_PROGRAM_HEADERS) throw new ElfError(`e_phnum ${h.phnum} is more than ${MAX_PROGRAM_HEADERS}`);
  if (h.phentsize !== ELF64_PHDR_SIZE) throw new ElfError(`e_phentsize ${h.phentsize} is not 56`);
  if (elf.u64n(32) === 0n) throw new ElfError('e_phoff is 0 with program headers');

  const segments: ElfSegment[] = [];
  elf.programHeaders64().forEach((p, i) => {
    if (p.type === PT_INTERP || p.type === PT_DYNAMIC) {
      throw new ElfError(`program header ${i} is ${p.type === PT_INTERP ? 'PT_INTERP' : 'PT_DYNAMIC'}: the image must be statically linked`);
    }
    if (p.type !== PT_LOAD) return;
    const name = `PT_LOAD segment ${i}`;
    const offset = toNumber(p.offset, `${name} p_offset`);
    const vaddr = toNumber(p.vaddr, `${name} p_vaddr`);
    const paddr = toNumber(p.paddr, `${name} p_paddr`);
    const filesz = toNumber(p.filesz, `${name} p_filesz`);
    const memsz = toNumber(p.memsz, `${name} p_memsz`);
    if (filesz > memsz) throw new ElfError(`${name}: p_filesz ${hex(filesz)} exceeds p_memsz ${hex(memsz)}`);
    if (offset + filesz > file.length) {
      throw new ElfError(`${name}: file bytes [${hex(offset)}, ${hex(offset + filesz)}) run past the end of the ${file.length}-byte file`);
    }
    if (vaddr !== paddr) {
      throw new ElfError(`${name}: p_vaddr ${hex(vaddr)} differs from p_paddr ${hex(paddr)} (the guest is identity-mapped)`);
    }
    if (memsz === 0) return;
    if (vaddr + memsz > Number.MAX_SAFE_INTEGER) throw new ElfError(`${name}: [${hex(vaddr)}, +${hex(memsz)}) wraps`);
    segments.push({ index: i, address: vaddr, memSize: memsz, fileOffset: offset, fileSize: filesz, flags: p.flags });
  });
  if (segments.length === 0) throw new ElfError('no PT_LOAD segment with contents');
  segments.sort((a, b) => a.address - b.address);
  for (let i = 1; i < segments.length; i++) {
    const a = segments[i - 1]!;
    const b = segments[i]!;
    if (b.address < a.address + a.memSize) {
      throw new ElfError(
        `PT_LOAD segments ${a.index} [${hex(a.address)}, ${hex(a.address + a.memSize)}) and ${b.index} [${hex(b.address)}, ${hex(b.address + b.memSize)}) overlap`,
      );
    }
  }
  const text = segments.find((s) => entry >= s.address && entry < s.address + s.memSize);
  if (!text) throw new ElfError(`entry point ${hex(entry)} is not inside any PT_LOAD segment`);
  if ((text.flags & PF_X) === 0) throw new ElfError(`entry point ${hex(entry)} is in PT_LOAD segment ${text.index}, which is not executable`);
  return { entry, segments };
}
