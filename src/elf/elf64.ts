// The one ELF64 little-endian file reader: the header, the program headers,
// the section headers and NUL-terminated strings, every read checked against
// the file's length (a hostile or truncated file is an ElfError, never a
// RangeError or a read past the end). It decides nothing about what a file
// must be; its users do (the guest image builder's dynamic-section reader,
// the kernel-kind detection of `xdpvm run`, the bare-metal and vmlinux
// loaders).
// References: System V ABI gABI ch. 4 (ELF header, sections) and ch. 5
// (program headers, dynamic section).
import { hex } from '../hex';

export class ElfError extends Error {
  override name = 'ElfError';
}

export const ELFCLASS64 = 2;
export const ELFDATA2LSB = 1;
export const EV_CURRENT = 1;
export const ET_REL = 1;
export const ET_EXEC = 2;
export const ET_DYN = 3;
export const EM_X86_64 = 62;
export const PT_LOAD = 1;
export const PT_DYNAMIC = 2;
export const PT_INTERP = 3;
export const SHT_DYNAMIC = 6;
export const PF_X = 1;
export const PF_W = 2;
export const PF_R = 4;

export const ELF64_EHDR_SIZE = 64;
export const ELF64_PHDR_SIZE = 56;
const SHDR_SIZE = 64;

export function isElf(buf: Uint8Array): boolean {
  return buf.length >= 4 && buf[0] === 0x7f && buf[1] === 0x45 && buf[2] === 0x4c && buf[3] === 0x46;
}

export interface ElfHeader {
  /** e_type: ET_REL, ET_EXEC, ET_DYN... */
  type: number;
  /** e_machine (62 = x86-64). */
  machine: number;
  /** e_entry as stored (a kernel's may be above 2^53). */
  entry: bigint;
  /** e_ident[EI_VERSION] and e_version (EV_CURRENT = 1). */
  identVersion: number;
  version: number;
  /** e_ehsize, e_phentsize, e_phnum. */
  ehsize: number;
  phentsize: number;
  phnum: number;
}

/** A program header as stored: the u64 fields as bigints (a kernel's virtual addresses are above 2^53). */
export interface ProgramHeader64 {
  type: number;
  flags: number;
  offset: bigint;
  vaddr: bigint;
  paddr: bigint;
  filesz: bigint;
  memsz: bigint;
}

export interface ProgramHeader {
  type: number;
  flags: number;
  offset: number;
  vaddr: number;
  paddr: number;
  filesz: number;
  memsz: number;
}

export interface SectionHeader {
  /** Empty when the section name string table is missing or the name unreadable. */
  name: string;
  type: number;
  offset: number;
  size: number;
  link: number;
}

/** A u64 field as a number; an ElfError naming `what` when it is 2^53 or more. */
export function toNumber(v: bigint, what: string): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new ElfError(`${what} ${hex(v)} is too large`);
  return Number(v);
}

export class Elf64File {
  readonly header: ElfHeader;
  private readonly view: DataView;

  /** Checks the identification bytes: ELF magic, 64-bit, little-endian. */
  constructor(readonly bytes: Uint8Array) {
    if (!isElf(bytes)) throw new ElfError('not an ELF file (bad magic)');
    if (bytes.length < ELF64_EHDR_SIZE) throw new ElfError(`truncated: the file is ${bytes.length} bytes, shorter than an ELF64 header (64)`);
    if (bytes[4] !== ELFCLASS64) throw new ElfError(`EI_CLASS ${bytes[4]} is not ELFCLASS64 (2): only 64-bit ELF is supported`);
    if (bytes[5] !== ELFDATA2LSB) throw new ElfError(`EI_DATA ${bytes[5]} is not ELFDATA2LSB (1): only little-endian ELF is supported`);
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.header = {
      type: this.u16(16),
      machine: this.u16(18),
      entry: this.u64n(24),
      identVersion: bytes[6]!,
      version: this.u32(20),
      ehsize: this.u16(52),
      phentsize: this.u16(54),
      phnum: this.u16(56),
    };
  }

  u16(off: number): number {
    this.check(off, 2);
    return this.view.getUint16(off, true);
  }

  u32(off: number): number {
    this.check(off, 4);
    return this.view.getUint32(off, true);
  }

  /** A u64 as a number: an ElfError naming `what` when it is 2^53 or more. */
  u64(off: number, what = `the u64 at ${off}`): number {
    return toNumber(this.u64n(off), what);
  }

  /** A u64 as stored. */
  u64n(off: number): bigint {
    this.check(off, 8);
    return this.view.getBigUint64(off, true);
  }

  i64(off: number): bigint {
    this.check(off, 8);
    return this.view.getBigInt64(off, true);
  }

  /** The NUL-terminated string at `off`, which must end before `limit`. */
  cstr(off: number, limit = this.bytes.length): string {
    if (off < 0 || off >= limit) throw new ElfError(`string offset ${off} out of range`);
    const end = this.bytes.indexOf(0, off);
    if (end < 0 || end >= limit) throw new ElfError(`unterminated string at ${off}`);
    return Buffer.from(this.bytes.buffer, this.bytes.byteOffset + off, end - off).toString('utf8');
  }

  /**
   * The program header table as stored (empty when there is none). The table must lie within the
   * file, after the ELF header; e_phentsize may be larger than an Elf64_Phdr (gABI), not smaller.
   */
  programHeaders64(): ProgramHeader64[] {
    const phoff = this.u64n(32);
    const { phentsize, phnum } = this.header;
    const out: ProgramHeader64[] = [];
    if (phoff === 0n || phnum === 0) return out;
    if (phentsize < ELF64_PHDR_SIZE) throw new ElfError(`bad e_phentsize ${phentsize}`);
    if (phoff < BigInt(ELF64_EHDR_SIZE) || phoff + BigInt(phnum * phentsize) > BigInt(this.bytes.length)) {
      throw new ElfError(`program header table [${hex(phoff)}, +${phnum} x ${phentsize}) is not within the ${this.bytes.length}-byte file`);
    }
    for (let i = 0; i < phnum; i++) {
      const o = Number(phoff) + i * phentsize;
      out.push({
        type: this.u32(o),
        flags: this.u32(o + 4),
        offset: this.u64n(o + 8),
        vaddr: this.u64n(o + 16),
        paddr: this.u64n(o + 24),
        filesz: this.u64n(o + 32),
        memsz: this.u64n(o + 40),
      });
    }
    return out;
  }

  /** The program header table with numbers: an ElfError for a field of 2^53 or more. */
  programHeaders(): ProgramHeader[] {
    return this.programHeaders64().map((p, i) => ({
      type: p.type,
      flags: p.flags,
      offset: toNumber(p.offset, `program header ${i} p_offset`),
      vaddr: toNumber(p.vaddr, `program header ${i} p_vaddr`),
      paddr: toNumber(p.paddr, `program header ${i} p_paddr`),
      filesz: toNumber(p.filesz, `program header ${i} p_filesz`),
      memsz: toNumber(p.memsz, `program header ${i} p_memsz`),
    }));
  }

  /** The section header table with names (empty when there is none). */
  sections(): SectionHeader[] {
    const shoff = this.u64(40);
    const shentsize = this.u16(58);
    let shnum = this.u16(60);
    let shstrndx = this.u16(62);
    if (shoff === 0) return [];
    if (shentsize < SHDR_SIZE) throw new ElfError(`bad e_shentsize ${shentsize}`);
    // Extended numbering: the real counts live in section 0.
    if (shnum === 0) shnum = this.u64(shoff + 32);
    if (shstrndx === 0xffff) shstrndx = this.u32(shoff + 40);
    const raw: Omit<SectionHeader, 'name'>[] = [];
    const names: number[] = [];
    for (let i = 0; i < shnum; i++) {
      const o = shoff + i * shentsize;
      names.push(this.u32(o));
      raw.push({ type: this.u32(o + 4), offset: this.u64(o + 24), size: this.u64(o + 32), link: this.u32(o + 40) });
    }
    const strtab = raw[shstrndx];
    return raw.map((s, i) => ({ ...s, name: strtab ? this.nameAt(strtab.offset + names[i]!, strtab.offset + strtab.size) : '' }));
  }

  /** The bytes of the section called `name`, or undefined. */
  section(name: string): Uint8Array | undefined {
    const s = this.sections().find((x) => x.name === name);
    if (!s) return undefined;
    if (s.offset + s.size > this.bytes.length) throw new ElfError(`section ${name} runs past the end of the file`);
    return this.bytes.subarray(s.offset, s.offset + s.size);
  }

  private nameAt(off: number, limit: number): string {
    try {
      return this.cstr(off, limit);
    } catch {
      return '';
    }
  }

  private check(off: number, n: number): void {
    if (off < 0 || off + n > this.bytes.length) throw new ElfError(`read of ${n} bytes at ${off} past the end (${this.bytes.length})`);
  }
}
