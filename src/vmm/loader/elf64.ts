// ELF64 parsing for the bare-metal loader: a static x86-64 executable whose
// PT_LOAD segments are copied to guest-physical memory at their addresses
// (guests are identity-mapped, so p_vaddr must equal p_paddr). Everything in
// the file is checked before anything is copied; a bad image is an ElfError
// naming the field and the values involved.
// References: System V ABI gABI ch. 4 (ELF header, program header), the
// x86-64 psABI (EM_X86_64 = 62).

export class ElfError extends Error {
  override name = 'ElfError';
}

export const ELF_MAGIC = [0x7f, 0x45, 0x4c, 0x46] as const;
export const ELFCLASS64 = 2;
export const ELFDATA2LSB = 1;
export const EV_CURRENT = 1;
export const ET_EXEC = 2;
export const ET_DYN = 3;
export const EM_X86_64 = 62;
export const PT_LOAD = 1;
export const PT_DYNAMIC = 2;
export const PT_INTERP = 3;
export const PF_X = 1;
export const PF_W = 2;
export const PF_R = 4;

export const ELF64_EHDR_SIZE = 64;
export const ELF64_PHDR_SIZE = 56;
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

const hex = (n: number | bigint): string => `0x${n.toString(16)}`;

/** A u64 field as a number; an ElfError when it is 2^53 or more (no guest address here is that large). */
function u64(dv: DataView, off: number, what: string): number {
  const v = dv.getBigUint64(off, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new ElfError(`${what} ${hex(v)} is too large`);
  return Number(v);
}

/** Parses and checks an ELF64 x86-64 static executable (the file bytes are not modified). */
export function parseElf64(file: Uint8Array): ElfImage {
  if (file.length < ELF64_EHDR_SIZE) throw new ElfError(`file is ${file.length} bytes, shorter than an ELF64 header (64)`);
  for (let i = 0; i < 4; i++) {
    if (file[i] !== ELF_MAGIC[i]) throw new ElfError('not an ELF file (bad magic)');
  }
  if (file[4] !== ELFCLASS64) throw new ElfError(`EI_CLASS ${file[4]} is not ELFCLASS64 (2): a 64-bit image is needed`);
  if (file[5] !== ELFDATA2LSB) throw new ElfError(`EI_DATA ${file[5]} is not ELFDATA2LSB (1): x86-64 is little-endian`);
  if (file[6] !== EV_CURRENT) throw new ElfError(`EI_VERSION ${file[6]} is not EV_CURRENT (1)`);
  const dv = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const type = dv.getUint16(16, true);
  if (type === ET_DYN) throw new ElfError('e_type ET_DYN: position-independent images are not supported; link a static ET_EXEC at a fixed address');
  if (type !== ET_EXEC) throw new ElfError(`e_type ${type} is not ET_EXEC (2)`);
  const machine = dv.getUint16(18, true);
  if (machine !== EM_X86_64) throw new ElfError(`e_machine ${machine} is not EM_X86_64 (62)`);
  const version = dv.getUint32(20, true);
  if (version !== EV_CURRENT) throw new ElfError(`e_version ${version} is not EV_CURRENT (1)`);
  const entry = u64(dv, 24, 'e_entry');
  const phoff = u64(dv, 32, 'e_phoff');
  const ehsize = dv.getUint16(52, true);
  const phentsize = dv.getUint16(54, true);
  const phnum = dv.getUint16(56, true);
  if (ehsize < ELF64_EHDR_SIZE) throw new ElfError(`e_ehsize ${ehsize} is smaller than 64`);
  if (phnum === 0) throw new ElfError('no program headers (e_phnum 0)');
  if (phnum > MAX_PROGRAM_HEADERS) throw new ElfError(`e_phnum ${phnum} is more than ${MAX_PROGRAM_HEADERS}`);
  if (phentsize !== ELF64_PHDR_SIZE) throw new ElfError(`e_phentsize ${phentsize} is not 56`);
  if (phoff < ELF64_EHDR_SIZE || phoff + phnum * ELF64_PHDR_SIZE > file.length) {
    throw new ElfError(`program header table [${hex(phoff)}, +${phnum} x 56) is not within the ${file.length}-byte file`);
  }

  const segments: ElfSegment[] = [];
  for (let i = 0; i < phnum; i++) {
    const o = phoff + i * ELF64_PHDR_SIZE;
    const ptype = dv.getUint32(o, true);
    if (ptype === PT_INTERP || ptype === PT_DYNAMIC) {
      throw new ElfError(`program header ${i} is ${ptype === PT_INTERP ? 'PT_INTERP' : 'PT_DYNAMIC'}: the image must be statically linked`);
    }
    if (ptype !== PT_LOAD) continue;
    const name = `PT_LOAD segment ${i}`;
    const flags = dv.getUint32(o + 4, true);
    const offset = u64(dv, o + 8, `${name} p_offset`);
    const vaddr = u64(dv, o + 16, `${name} p_vaddr`);
    const paddr = u64(dv, o + 24, `${name} p_paddr`);
    const filesz = u64(dv, o + 32, `${name} p_filesz`);
    const memsz = u64(dv, o + 40, `${name} p_memsz`);
    if (filesz > memsz) throw new ElfError(`${name}: p_filesz ${hex(filesz)} exceeds p_memsz ${hex(memsz)}`);
    if (offset + filesz > file.length) {
      throw new ElfError(`${name}: file bytes [${hex(offset)}, ${hex(offset + filesz)}) run past the end of the ${file.length}-byte file`);
    }
    if (vaddr !== paddr) {
      throw new ElfError(`${name}: p_vaddr ${hex(vaddr)} differs from p_paddr ${hex(paddr)} (the guest is identity-mapped)`);
    }
    if (memsz === 0) continue;
    if (vaddr + memsz > Number.MAX_SAFE_INTEGER) throw new ElfError(`${name}: [${hex(vaddr)}, +${hex(memsz)}) wraps`);
    segments.push({ index: i, address: vaddr, memSize: memsz, fileOffset: offset, fileSize: filesz, flags });
  }
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
