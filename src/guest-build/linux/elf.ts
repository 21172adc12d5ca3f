// A small ELF64 (little-endian) reader: what the image builder needs to know
// about a binary without running it. The dynamic section (DT_NEEDED, DT_SONAME,
// DT_RPATH, DT_RUNPATH), the program interpreter (PT_INTERP), and a section's
// bytes by name (a kernel module's .modinfo).
import { readFileSync } from 'node:fs';

export const ET_REL = 1;
export const ET_EXEC = 2;
export const ET_DYN = 3;

const PT_LOAD = 1;
const PT_DYNAMIC = 2;
const PT_INTERP = 3;
const SHT_DYNAMIC = 6;

const DT_NULL = 0;
const DT_NEEDED = 1;
const DT_STRTAB = 5;
const DT_STRSZ = 10;
const DT_SONAME = 14;
const DT_RPATH = 15;
const DT_RUNPATH = 29;

export class ElfError extends Error {
  override name = 'ElfError';
}

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

interface Segment {
  type: number;
  offset: number;
  vaddr: number;
  filesz: number;
}

interface Section {
  name: string;
  type: number;
  offset: number;
  size: number;
  link: number;
}

const ELF_MAGIC = [0x7f, 0x45, 0x4c, 0x46];

export function isElf(buf: Uint8Array): boolean {
  return buf.length >= 4 && ELF_MAGIC.every((b, i) => buf[i] === b);
}

class Reader {
  private readonly view: DataView;
  constructor(readonly buf: Buffer) {
    if (!isElf(buf)) throw new ElfError('not an ELF file (bad magic)');
    if (buf.length < 64) throw new ElfError('truncated ELF header');
    if (buf[4] !== 2) throw new ElfError(`only 64-bit ELF is supported (EI_CLASS ${buf[4]})`);
    if (buf[5] !== 1) throw new ElfError(`only little-endian ELF is supported (EI_DATA ${buf[5]})`);
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  u16(off: number): number {
    this.check(off, 2);
    return this.view.getUint16(off, true);
  }
  u32(off: number): number {
    this.check(off, 4);
    return this.view.getUint32(off, true);
  }
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
  cstr(off: number, limit = this.buf.length): string {
    if (off < 0 || off >= limit) throw new ElfError(`string offset ${off} out of range`);
    const end = this.buf.indexOf(0, off);
    if (end < 0 || end >= limit) throw new ElfError(`unterminated string at ${off}`);
    return this.buf.toString('utf8', off, end);
  }
  private check(off: number, n: number): void {
    if (off < 0 || off + n > this.buf.length) throw new ElfError(`read of ${n} bytes at ${off} past the end (${this.buf.length})`);
  }
}

function segments(r: Reader): Segment[] {
  const phoff = r.u64(32);
  const phentsize = r.u16(54);
  const phnum = r.u16(56);
  const out: Segment[] = [];
  if (phoff === 0 || phnum === 0) return out;
  if (phentsize < 56) throw new ElfError(`bad e_phentsize ${phentsize}`);
  for (let i = 0; i < phnum; i++) {
    const o = phoff + i * phentsize;
    out.push({ type: r.u32(o), offset: r.u64(o + 8), vaddr: r.u64(o + 16), filesz: r.u64(o + 32) });
  }
  return out;
}

function sections(r: Reader): Section[] {
  const shoff = r.u64(40);
  const shentsize = r.u16(58);
  let shnum = r.u16(60);
  let shstrndx = r.u16(62);
  if (shoff === 0) return [];
  if (shentsize < 64) throw new ElfError(`bad e_shentsize ${shentsize}`);
  // Extended numbering: the real counts live in section 0.
  if (shnum === 0) shnum = r.u64(shoff + 32);
  if (shstrndx === 0xffff) shstrndx = r.u32(shoff + 40);
  const raw: Omit<Section, 'name'>[] = [];
  const names: number[] = [];
  for (let i = 0; i < shnum; i++) {
    const o = shoff + i * shentsize;
    names.push(r.u32(o));
    raw.push({ type: r.u32(o + 4), offset: r.u64(o + 24), size: r.u64(o + 32), link: r.u32(o + 40) });
  }
  const strtab = raw[shstrndx];
  return raw.map((s, i) => ({ ...s, name: strtab ? safeStr(r, strtab.offset + names[i]!, strtab.offset + strtab.size) : '' }));
}

function safeStr(r: Reader, off: number, limit: number): string {
  try {
    return r.cstr(off, limit);
  } catch {
    return '';
  }
}

/** File offset of a virtual address, through the PT_LOAD segments. */
function vaddrToOffset(segs: Segment[], vaddr: number): number {
  for (const s of segs) {
    if (s.type === PT_LOAD && vaddr >= s.vaddr && vaddr < s.vaddr + s.filesz) return vaddr - s.vaddr + s.offset;
  }
  throw new ElfError(`virtual address 0x${vaddr.toString(16)} is in no PT_LOAD segment`);
}

export function readElf(buf: Buffer): ElfInfo {
  const r = new Reader(buf);
  const info: ElfInfo = { type: r.u16(16), machine: r.u16(18), needed: [], rpath: [], runpath: [] };
  const segs = segments(r);
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
    const secs = sections(r);
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
  const s = sections(new Reader(buf)).find((x) => x.name === name);
  if (!s) return undefined;
  if (s.offset + s.size > buf.length) throw new ElfError(`section ${name} runs past the end of the file`);
  return buf.subarray(s.offset, s.offset + s.size);
}
