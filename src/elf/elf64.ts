// The one ELF64 little-endian file reader: the header, the program headers,
// the section headers and NUL-terminated strings, every read checked against
// the file's length (a hostile or truncated file is an ElfError, never a
// RangeError or a read past the end). It decides nothing about what a file
// must be; its users do (the guest image builder's dynamic-section reader,
// the kernel-kind detection of `xdpvm run`).
// References: System V ABI gABI ch. 4 (ELF header, sections) and ch. 5
// (program headers, dynamic section).

export class ElfError extends Error {
  override name = 'ElfError';
}

export const ELFCLASS64 = 2;
export const ELFDATA2LSB = 1;
export const ET_REL = 1;
export const ET_EXEC = 2;
export const ET_DYN = 3;
export const EM_X86_64 = 62;
export const PT_LOAD = 1;
export const PT_DYNAMIC = 2;
export const PT_INTERP = 3;
export const SHT_DYNAMIC = 6;

const EHDR_SIZE = 64;
const PHDR_SIZE = 56;
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

export class Elf64File {
  readonly header: ElfHeader;
  private readonly view: DataView;

  /** Checks the identification bytes: ELF magic, 64-bit, little-endian. */
  constructor(readonly bytes: Uint8Array) {
    if (!isElf(bytes)) throw new ElfError('not an ELF file (bad magic)');
    if (bytes.length < EHDR_SIZE) throw new ElfError('truncated ELF header');
    if (bytes[4] !== ELFCLASS64) throw new ElfError(`only 64-bit ELF is supported (EI_CLASS ${bytes[4]})`);
    if (bytes[5] !== ELFDATA2LSB) throw new ElfError(`only little-endian ELF is supported (EI_DATA ${bytes[5]})`);
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.header = { type: this.u16(16), machine: this.u16(18), entry: this.view.getBigUint64(24, true) };
  }

  u16(off: number): number {
    this.check(off, 2);
    return this.view.getUint16(off, true);
  }

  u32(off: number): number {
    this.check(off, 4);
    return this.view.getUint32(off, true);
  }

  /** A u64 as a number: an ElfError when it is 2^53 or more. */
  u64(off: number): number {
    this.check(off, 8);
    const v = this.view.getBigUint64(off, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new ElfError(`64-bit value at ${off} too large`);
    return Number(v);
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

  /** The program header table (empty when there is none). */
  programHeaders(): ProgramHeader[] {
    const phoff = this.u64(32);
    const phentsize = this.u16(54);
    const phnum = this.u16(56);
    const out: ProgramHeader[] = [];
    if (phoff === 0 || phnum === 0) return out;
    if (phentsize < PHDR_SIZE) throw new ElfError(`bad e_phentsize ${phentsize}`);
    for (let i = 0; i < phnum; i++) {
      const o = phoff + i * phentsize;
      out.push({
        type: this.u32(o),
        flags: this.u32(o + 4),
        offset: this.u64(o + 8),
        vaddr: this.u64(o + 16),
        paddr: this.u64(o + 24),
        filesz: this.u64(o + 32),
        memsz: this.u64(o + 40),
      });
    }
    return out;
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
