// What the image builder needs to know about a binary without running it,
// read with the one ELF reader (src/elf/elf64.ts): the dynamic section
// (DT_NEEDED, DT_SONAME, DT_RPATH, DT_RUNPATH), the program interpreter
// (PT_INTERP), and a section's bytes by name (a kernel module's .modinfo).
import { readFileSync } from 'node:fs';
import { Elf64File, ElfError, PT_DYNAMIC, PT_INTERP, PT_LOAD, SHT_DYNAMIC, type ProgramHeader } from '../../elf/elf64';

export { ElfError, ET_DYN, ET_EXEC, ET_REL, isElf } from '../../elf/elf64';

const DT_NULL = 0;
const DT_NEEDED = 1;
const DT_STRTAB = 5;
const DT_STRSZ = 10;
const DT_SONAME = 14;
const DT_RPATH = 15;
const DT_RUNPATH = 29;

export interface ElfInfo {
  /** ET_REL, ET_EXEC, ET_DYN... */
  type: number;
  /** e_machine (62 = x86-64). */
  machine: number;
  /** PT_INTERP, e.g. /lib64/ld-linux-x86-64.so.2; absent for static binaries and libraries. */
  interp?: string;
  /** DT_NEEDED entries, in order. */
  needed: string[];
  soname?: string;
  rpath: string[];
  runpath: string[];
}

/** File offset of a virtual address, through the PT_LOAD segments. */
function vaddrToOffset(segs: ProgramHeader[], vaddr: number): number {
  for (const s of segs) {
    if (s.type === PT_LOAD && vaddr >= s.vaddr && vaddr < s.vaddr + s.filesz) return vaddr - s.vaddr + s.offset;
  }
  throw new ElfError(`virtual address 0x${vaddr.toString(16)} is in no PT_LOAD segment`);
}

export function readElf(buf: Buffer): ElfInfo {
  const r = new Elf64File(buf);
  const info: ElfInfo = { type: r.header.type, machine: r.header.machine, needed: [], rpath: [], runpath: [] };
  const segs = r.programHeaders();
  const interp = segs.find((s) => s.type === PT_INTERP);
  if (interp) info.interp = r.cstr(interp.offset, interp.offset + interp.filesz);

  // The dynamic table: from PT_DYNAMIC (what the loader uses), else from the .dynamic section.
  let dynOff = -1;
  let dynSize = 0;
  let strtabOff = -1;
  let strtabSize = 0;
  const dynSeg = segs.find((s) => s.type === PT_DYNAMIC);
  if (dynSeg) {
    dynOff = dynSeg.offset;
    dynSize = dynSeg.filesz;
  } else {
    const secs = r.sections();
    const dynSec = secs.find((s) => s.type === SHT_DYNAMIC);
    if (dynSec) {
      dynOff = dynSec.offset;
      dynSize = dynSec.size;
      const str = secs[dynSec.link];
      if (str) {
        strtabOff = str.offset;
        strtabSize = str.size;
      }
    }
  }
  if (dynOff < 0) return info;

  const entries: { tag: number; val: number }[] = [];
  for (let o = dynOff; o + 16 <= dynOff + dynSize; o += 16) {
    const tag = r.i64(o);
    if (tag === BigInt(DT_NULL)) break;
    if (tag < 0n || tag > 0x7fffffffn) continue; // OS/processor-specific tags we do not read
    entries.push({ tag: Number(tag), val: r.u64(o + 8) });
  }
  const strtab = entries.find((e) => e.tag === DT_STRTAB);
  const strsz = entries.find((e) => e.tag === DT_STRSZ);
  if (strtab && dynSeg) {
    strtabOff = vaddrToOffset(segs, strtab.val);
    strtabSize = strsz ? strsz.val : buf.length - strtabOff;
  }
  const needsStrings = entries.some((e) => [DT_NEEDED, DT_SONAME, DT_RPATH, DT_RUNPATH].includes(e.tag));
  if (strtabOff < 0) {
    if (needsStrings) throw new ElfError('dynamic section without a string table');
    return info;
  }
  const str = (off: number): string => r.cstr(strtabOff + off, strtabOff + strtabSize);
  for (const e of entries) {
    if (e.tag === DT_NEEDED) info.needed.push(str(e.val));
    else if (e.tag === DT_SONAME) info.soname = str(e.val);
    else if (e.tag === DT_RPATH) info.rpath.push(...str(e.val).split(':').filter(Boolean));
    else if (e.tag === DT_RUNPATH) info.runpath.push(...str(e.val).split(':').filter(Boolean));
  }
  return info;
}

export function readElfFile(file: string): ElfInfo {
  try {
    return readElf(readFileSync(file));
  } catch (e) {
    if (e instanceof ElfError) throw new ElfError(`${file}: ${e.message}`);
    throw e;
  }
}

/** The bytes of the section called `name`, or undefined. */
export function elfSection(buf: Buffer, name: string): Buffer | undefined {
  const bytes = new Elf64File(buf).section(name);
  return bytes && Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
