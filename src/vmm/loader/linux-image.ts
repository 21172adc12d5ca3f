// Recognising a Linux x86 kernel file and reading what the loader needs
// from it, trusting nothing: a bzImage's real-mode setup header
// (Documentation/arch/x86/boot.rst, "THE LINUX/x86 BOOT PROTOCOL", section
// "THE REAL-MODE KERNEL HEADER") or a vmlinux ELF64's program headers (System
// V gABI ch. 5). Parsing never writes anywhere; every offset read is checked
// against the file's length first.

import { Elf64File, ElfError, ELF64_PHDR_SIZE, EM_X86_64, ET_EXEC, isElf, PT_LOAD, type ProgramHeader64 } from '../../elf/elf64';
import { hex } from '../../hex';

// The loader tells a vmlinux from a bzImage by the ELF magic.
export { isElf };

export class LinuxImageError extends Error {
  override name = 'LinuxImageError';
}

/** Offsets of the setup header fields in the kernel file (= in boot_params), boot.rst "THE REAL-MODE KERNEL HEADER". */
export const enum Hdr {
  SetupSects = 0x1f1,
  RootFlags = 0x1f2,
  Syssize = 0x1f4,
  RamSize = 0x1f8,
  VidMode = 0x1fa,
  RootDev = 0x1fc,
  BootFlag = 0x1fe,
  Jump = 0x200,
  Header = 0x202,
  Version = 0x206,
  RealmodeSwtch = 0x208,
  StartSysSeg = 0x20c,
  KernelVersion = 0x20e,
  TypeOfLoader = 0x210,
  Loadflags = 0x211,
  SetupMoveSize = 0x212,
  Code32Start = 0x214,
  RamdiskImage = 0x218,
  RamdiskSize = 0x21c,
  BootsectKludge = 0x220,
  HeapEndPtr = 0x224,
  ExtLoaderVer = 0x226,
  ExtLoaderType = 0x227,
  CmdLinePtr = 0x228,
  InitrdAddrMax = 0x22c,
  KernelAlignment = 0x230,
  RelocatableKernel = 0x234,
  MinAlignment = 0x235,
  Xloadflags = 0x236,
  CmdlineSize = 0x238,
  HardwareSubarch = 0x23c,
  HardwareSubarchData = 0x240,
  PayloadOffset = 0x248,
  PayloadLength = 0x24c,
  SetupData = 0x250,
  PrefAddress = 0x258,
  InitSize = 0x260,
  HandoverOffset = 0x264,
  KernelInfoOffset = 0x268,
  /** End of struct setup_header as of protocol 2.15. */
  End = 0x26c,
}

/** "HdrS" read as a little-endian u32 (boot.rst: header, 2.00+). */
export const HDRS_MAGIC = 0x5372_6448;
/** boot.rst: boot_flag "Contains 0xAA55". */
export const BOOT_FLAG = 0xaa55;
/** boot.rst "64-bit BOOT PROTOCOL": the 64-bit entry point needs xloadflags (2.12). */
export const MIN_PROTOCOL_64BIT = 0x020c;

/** boot.rst, loadflags. */
export const enum LoadFlags {
  /** Read: the protected-mode code is loaded at 0x100000 (a bzImage). */
  LoadedHigh = 1 << 0,
  /** Write: suppress early messages. */
  QuietFlag = 1 << 5,
  /** Write: heap_end_ptr is valid. */
  CanUseHeap = 1 << 7,
}

/** boot.rst, xloadflags (2.12+). */
export const enum XLoadFlags {
  /** The kernel has the legacy 64-bit entry point at 0x200. */
  Kernel64 = 1 << 0,
  /** Kernel, boot_params, command line and ramdisk may be above 4 GiB. */
  CanBeLoadedAbove4G = 1 << 1,
  EfiHandover32 = 1 << 2,
  EfiHandover64 = 1 << 3,
  EfiKexec = 1 << 4,
}

/** The setup header as the file states it. u64 fields are bigint: the file may claim anything. */
export interface SetupHeader {
  setupSects: number;
  rootFlags: number;
  syssize: number;
  ramSize: number;
  vidMode: number;
  rootDev: number;
  bootFlag: number;
  jump: number;
  header: number;
  version: number;
  realmodeSwtch: number;
  startSysSeg: number;
  kernelVersion: number;
  typeOfLoader: number;
  loadflags: number;
  setupMoveSize: number;
  code32Start: number;
  ramdiskImage: number;
  ramdiskSize: number;
  bootsectKludge: number;
  heapEndPtr: number;
  extLoaderVer: number;
  extLoaderType: number;
  cmdLinePtr: number;
  initrdAddrMax: number;
  kernelAlignment: number;
  relocatableKernel: number;
  minAlignment: number;
  xloadflags: number;
  cmdlineSize: number;
  hardwareSubarch: number;
  hardwareSubarchData: bigint;
  payloadOffset: number;
  payloadLength: number;
  setupData: bigint;
  prefAddress: bigint;
  initSize: number;
  handoverOffset: number;
  kernelInfoOffset: number;
}

export type PayloadFormat = 'gzip' | 'bzip2' | 'lzma' | 'xz' | 'lzo' | 'lz4' | 'zstd' | 'elf' | 'unknown';

export interface BzImageInfo {
  format: 'bzImage';
  header: SetupHeader;
  /** "2.15" */
  protocol: string;
  /** Bytes of the real-mode part (boot sector + setup): (setup_sects || 4) + 1 sectors. */
  setupBytes: number;
  /** File offset of the protected-mode part (= setupBytes). */
  protectedModeOffset: number;
  /** syssize * 16: the protected-mode part's length. */
  protectedModeBytes: number;
  /** The file holds all of the protected-mode part. */
  complete: boolean;
  /** Bytes after the protected-mode part (e.g. an appended PE signature). */
  trailingBytes: number;
  /** 0x202 + the jump's displacement byte: where the header ends (boot.rst, 64-bit protocol). */
  headerEnd: number;
  /** The kernel_version string, when it points inside the setup part. */
  kernelVersionString: string | undefined;
  /** Compression of the payload at protectedModeOffset + payload_offset, from its magic. */
  payloadFormat: PayloadFormat;
  flags: {
    loadedHigh: boolean;
    canUseHeap: boolean;
    kernel64: boolean;
    canBeLoadedAbove4G: boolean;
    relocatable: boolean;
  };
}

export interface VmlinuxSegment {
  /** Index in the program header table. */
  index: number;
  /** p_paddr: where the bytes go in guest-physical memory. */
  physical: number;
  /** p_vaddr (bigint: kernel addresses are above 2^53). */
  virtual: bigint;
  fileOffset: number;
  fileSize: number;
  memSize: number;
  flags: number;
}

export interface VmlinuxInfo {
  format: 'vmlinux';
  /** e_entry as the file states it. */
  entryField: bigint;
  /** Guest-physical address of the entry (startup_64). */
  entry: number;
  /** PT_LOAD segments with memSize > 0, by physical address. */
  segments: VmlinuxSegment[];
  /** [start, end) of everything the segments occupy. */
  start: number;
  end: number;
}

export type LinuxImageInfo = BzImageInfo | VmlinuxInfo;

/** Reads the setup header fields; the caller has checked the file reaches Hdr.End. */
function readHeader(dv: DataView): SetupHeader {
  const u8 = (o: number): number => dv.getUint8(o);
  const u16 = (o: number): number => dv.getUint16(o, true);
  const u32 = (o: number): number => dv.getUint32(o, true);
  const u64 = (o: number): bigint => dv.getBigUint64(o, true);
  return {
    setupSects: u8(Hdr.SetupSects),
    rootFlags: u16(Hdr.RootFlags),
    syssize: u32(Hdr.Syssize),
    ramSize: u16(Hdr.RamSize),
    vidMode: u16(Hdr.VidMode),
    rootDev: u16(Hdr.RootDev),
    bootFlag: u16(Hdr.BootFlag),
    jump: u16(Hdr.Jump),
    header: u32(Hdr.Header),
    version: u16(Hdr.Version),
    realmodeSwtch: u32(Hdr.RealmodeSwtch),
    startSysSeg: u16(Hdr.StartSysSeg),
    kernelVersion: u16(Hdr.KernelVersion),
    typeOfLoader: u8(Hdr.TypeOfLoader),
    loadflags: u8(Hdr.Loadflags),
    setupMoveSize: u16(Hdr.SetupMoveSize),
    code32Start: u32(Hdr.Code32Start),
    ramdiskImage: u32(Hdr.RamdiskImage),
    ramdiskSize: u32(Hdr.RamdiskSize),
    bootsectKludge: u32(Hdr.BootsectKludge),
    heapEndPtr: u16(Hdr.HeapEndPtr),
    extLoaderVer: u8(Hdr.ExtLoaderVer),
    extLoaderType: u8(Hdr.ExtLoaderType),
    cmdLinePtr: u32(Hdr.CmdLinePtr),
    initrdAddrMax: u32(Hdr.InitrdAddrMax),
    kernelAlignment: u32(Hdr.KernelAlignment),
    relocatableKernel: u8(Hdr.RelocatableKernel),
    minAlignment: u8(Hdr.MinAlignment),
    xloadflags: u16(Hdr.Xloadflags),
    cmdlineSize: u32(Hdr.CmdlineSize),
    hardwareSubarch: u32(Hdr.HardwareSubarch),
    hardwareSubarchData: u64(Hdr.HardwareSubarchData),
    payloadOffset: u32(Hdr.PayloadOffset),
    payloadLength: u32(Hdr.PayloadLength),
    setupData: u64(Hdr.SetupData),
    prefAddress: u64(Hdr.PrefAddress),
    initSize: u32(Hdr.InitSize),
    handoverOffset: u32(Hdr.HandoverOffset),
    kernelInfoOffset: u32(Hdr.KernelInfoOffset),
  };
}

/** Compression magic numbers as scripts/extract-vmlinux looks for them. */
function payloadFormat(file: Uint8Array, at: number): PayloadFormat {
  const is = (...m: number[]): boolean => at >= 0 && at + m.length <= file.length && m.every((b, i) => file[at + i] === b);
  if (is(0x1f, 0x8b)) return 'gzip';
  if (is(0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00)) return 'xz';
  if (is(0x42, 0x5a, 0x68)) return 'bzip2';
  if (is(0x5d, 0x00, 0x00)) return 'lzma';
  if (is(0x89, 0x4c, 0x5a, 0x4f)) return 'lzo';
  if (is(0x02, 0x21, 0x4c, 0x18)) return 'lz4';
  if (is(0x28, 0xb5, 0x2f, 0xfd)) return 'zstd';
  if (is(0x7f, 0x45, 0x4c, 0x46)) return 'elf';
  return 'unknown';
}

/** "2.15" for 0x020f. */
export function protocolString(version: number): string {
  return `${version >> 8}.${(version & 0xff).toString().padStart(2, '0')}`;
}

/**
 * Parses a bzImage's setup header. Throws LinuxImageError when the file is
 * not a bzImage at all (too short, no "HdrS", no 0xAA55); a header that is
 * present but unusable (old protocol, no 64-bit entry, truncated payload) is
 * described, and the loader rejects it with the reason.
 */
export function parseBzImage(file: Uint8Array, name = 'kernel'): BzImageInfo {
  if (file.length < Hdr.End) {
    throw new LinuxImageError(`${name}: ${file.length} bytes is too short for a bzImage (its setup header alone ends at ${hex(Hdr.End)})`);
  }
  const dv = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const header = readHeader(dv);
  if (header.header !== HDRS_MAGIC) {
    const got = Buffer.from(file.subarray(Hdr.Header, Hdr.Header + 4)).toString('latin1');
    throw new LinuxImageError(`${name}: no Linux boot header: bytes at 0x202 are ${JSON.stringify(got)}, not "HdrS" (not a bzImage, nor an ELF vmlinux)`);
  }
  if (header.bootFlag !== BOOT_FLAG) {
    throw new LinuxImageError(`${name}: boot_flag at 0x1fe is ${hex(header.bootFlag)}, not 0xaa55 (damaged bzImage)`);
  }
  // boot.rst: "If [setup_sects] is 0, the real value is 4." The boot sector is one more 512-byte sector.
  const setupBytes = ((header.setupSects || 4) + 1) * 512;
  const protectedModeBytes = header.syssize * 16;
  const complete = setupBytes + protectedModeBytes <= file.length;
  const kvAt = header.kernelVersion === 0 ? -1 : header.kernelVersion + 0x200;
  let kernelVersionString: string | undefined;
  if (kvAt > 0 && kvAt < Math.min(setupBytes, file.length)) {
    const end = file.indexOf(0, kvAt);
    const stop = Math.min(end < 0 ? file.length : end, kvAt + 256, setupBytes);
    kernelVersionString = Buffer.from(file.subarray(kvAt, stop)).toString('latin1');
  }
  return {
    format: 'bzImage',
    header,
    protocol: protocolString(header.version),
    setupBytes,
    protectedModeOffset: setupBytes,
    protectedModeBytes,
    complete,
    trailingBytes: complete ? file.length - setupBytes - protectedModeBytes : 0,
    headerEnd: 0x202 + (header.jump >> 8),
    kernelVersionString,
    payloadFormat: payloadFormat(file, setupBytes + header.payloadOffset),
    flags: {
      loadedHigh: (header.loadflags & LoadFlags.LoadedHigh) !== 0,
      canUseHeap: (header.loadflags & LoadFlags.CanUseHeap) !== 0,
      kernel64: (header.xloadflags & XLoadFlags.Kernel64) !== 0,
      canBeLoadedAbove4G: (header.xloadflags & XLoadFlags.CanBeLoadedAbove4G) !== 0,
      relocatable: header.relocatableKernel !== 0,
    },
  };
}

const MAX_PHDRS = 64;

/** The ELF64 reader's view of a vmlinux; its ElfErrors become LinuxImageErrors naming the file. */
function vmlinuxElf(file: Uint8Array, bad: (what: string) => LinuxImageError): { elf: Elf64File; phdrs: ProgramHeader64[] } {
  try {
    const elf = new Elf64File(file);
    const h = elf.header;
    if (h.machine !== EM_X86_64) throw bad(`e_machine ${h.machine} is not EM_X86_64 (62)`);
    if (h.type !== ET_EXEC) throw bad(`e_type ${h.type} is not ET_EXEC (2)`);
    if (h.phentsize !== ELF64_PHDR_SIZE) throw bad(`e_phentsize ${h.phentsize} is not 56`);
    if (h.phnum === 0 || h.phnum > MAX_PHDRS) throw bad(`e_phnum ${h.phnum} is not 1..${MAX_PHDRS}`);
    if (elf.u64n(32) === 0n) throw bad('e_phoff is 0 with program headers');
    return { elf, phdrs: elf.programHeaders64() };
  } catch (e) {
    if (e instanceof ElfError) throw bad(e.message);
    throw e;
  }
}

/** Parses a vmlinux ELF64 (x86-64, ET_EXEC): PT_LOAD segments by physical address, entry made physical. */
export function parseVmlinux(file: Uint8Array, name = 'kernel'): VmlinuxInfo {
  const bad = (what: string): LinuxImageError => new LinuxImageError(`${name}: vmlinux ELF: ${what}`);
  const { elf, phdrs } = vmlinuxElf(file, bad);
  const entryField = elf.header.entry;
  const segments: VmlinuxSegment[] = [];
  const limit = BigInt(Number.MAX_SAFE_INTEGER);
  phdrs.forEach((p, i) => {
    if (p.type !== PT_LOAD) return;
    const { offset, vaddr, paddr, filesz, memsz } = p;
    const seg = `PT_LOAD ${i}`;
    if (filesz > memsz) throw bad(`${seg}: p_filesz ${hex(filesz)} exceeds p_memsz ${hex(memsz)}`);
    if (offset + filesz > BigInt(file.length)) throw bad(`${seg}: bytes [${hex(offset)}, +${hex(filesz)}) run past the end of the ${file.length}-byte file (truncated?)`);
    if (paddr + memsz > limit) throw bad(`${seg}: physical range [${hex(paddr)}, +${hex(memsz)}) is not a plausible address`);
    if (memsz === 0n) return;
    segments.push({
      index: i,
      physical: Number(paddr),
      virtual: vaddr,
      fileOffset: Number(offset),
      fileSize: Number(filesz),
      memSize: Number(memsz),
      flags: p.flags,
    });
  });
  if (segments.length === 0) throw bad('no PT_LOAD segment');
  segments.sort((a, b) => a.physical - b.physical);
  for (let i = 1; i < segments.length; i++) {
    const a = segments[i - 1]!;
    const b = segments[i]!;
    if (b.physical < a.physical + a.memSize) throw bad(`PT_LOAD ${a.index} and ${b.index} overlap in physical memory`);
  }
  // x86-64's vmlinux.lds.S says ENTRY(phys_startup_64): e_entry is already physical. Accept a
  // virtual one too (translated through the segment that holds it), as other linkers may emit.
  let entry: number | undefined;
  for (const s of segments) {
    if (entryField >= s.virtual && entryField < s.virtual + BigInt(s.memSize)) {
      entry = s.physical + Number(entryField - s.virtual);
      break;
    }
  }
  if (entry === undefined) {
    const s = segments.find((x) => entryField >= BigInt(x.physical) && entryField < BigInt(x.physical + x.memSize));
    if (s) entry = Number(entryField);
  }
  if (entry === undefined) throw bad(`entry point ${hex(entryField)} is not inside any PT_LOAD segment`);
  const last = segments[segments.length - 1]!;
  return { format: 'vmlinux', entryField, entry, segments, start: segments[0]!.physical, end: last.physical + last.memSize };
}

/** What a kernel file is and what it says about itself (for diagnostics and the loader). */
export function describeLinuxImage(file: Uint8Array, name = 'kernel'): LinuxImageInfo {
  return isElf(file) ? parseVmlinux(file, name) : parseBzImage(file, name);
}
