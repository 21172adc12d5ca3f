// Boots a Linux x86-64 kernel the way Documentation/arch/x86/boot.rst's
// "64-bit BOOT PROTOCOL" describes: the protected-mode kernel (bzImage) or
// the ELF segments (vmlinux) in RAM, a zero page (boot_params) with the
// setup header, command line, initrd and e820 map, identity page tables and
// a flat GDT, and the BSP entered in long mode at the 64-bit entry point
// with RSI = &boot_params and interrupts off. An Intel MP 1.4 table tells
// the kernel its CPUs and I/O APIC (there is no ACPI). The other vCPUs are
// left in KVM's reset state: the in-kernel local APIC holds them until the
// kernel sends INIT/SIPI.
//
// Guest-physical layout below 1 MiB (fixed; the kernel sits from 1 MiB up,
// the initrd as high in low RAM as the header allows):
//   0x00400  BIOS data area: EBDA segment (0x40E) and base memory size (0x413)
//   0x00500  GDT: null, null, __BOOT_CS 0x10, __BOOT_DS 0x18, TSS 0x20 (16 bytes)
//   0x00580  TSS (zeroed, no I/O bitmap)
//   0x01000  page tables: PML4, PDPT, 4 PDs of 2 MiB pages = identity map of 4 GiB
//   0x07000  boot_params (the zero page)
//   0x08000  boot stack (RSP = 0x9000)
//   0x09000  command line, NUL-terminated, up to 0x10000
//   0x9FC00  EBDA: MP floating pointer, then the MP configuration table when it fits
//   0xF0000  MP configuration table when it does not (many vCPUs)
// All of it sits in the first 64 KiB, which Linux keeps reserved
// (CONFIG_X86_RESERVE_LOW), or in e820-reserved memory; the kernel copies
// boot_params and the command line (copy_bootdata) before it allocates any
// memory, and its decompressor writes only inside [load, run + init_size)
// and a trampoline it saves and restores just below the EBDA (0x9D000).
import type { MsrEntry } from '../../kvm/msr';
import type { Regs, Segment, Sregs } from '../../kvm/regs';
import type { Vcpu } from '../../kvm/vcpu';
import type { GuestMemory } from '../../memory/guest-memory';
import type { BootPlan } from '../machine';
import { KVM_IDENTITY_MAP_ADDR, KVM_TSS_ADDR } from '../memory-layout';
import { buildBootParams, DEFAULT_CMDLINE_SIZE, DEFAULT_INITRD_ADDR_MAX, ZERO_PAGE_SIZE } from './boot-params';
import { buildE820, EBDA_START, ONE_MIB, BIOS_ROM_START, type E820Entry, type RamRange } from './e820';
import { buildTss, encodeDescriptor, encodeTssDescriptor, KERNEL_CODE64, KERNEL_DATA, kvmSegment, TSS64_SIZE, unusableSegment, type SegmentDescriptor } from './gdt';
import { type BzImageInfo, Hdr, isElf, LinuxImageError, MIN_PROTOCOL_64BIT, parseBzImage, parseVmlinux, protocolString, type VmlinuxInfo } from './linux-image';
import { buildMpConfigTable, buildMpFloatingPointer, MP_FLOATING_SIZE, MP_MAX_CPUS, mpConfigTableSize } from './mp-table';
import { buildIdentityPageTables, PAGE_SIZE, pageTableBytes, type MapRange } from './page-tables';
import { hex } from '../../hex';

export { describeLinuxImage, LinuxImageError } from './linux-image';

export class LinuxLoaderError extends Error {
  override name = 'LinuxLoaderError';
}

export interface LinuxBootOptions {
  /** The kernel file: a bzImage, or a vmlinux ELF64. */
  kernel: Uint8Array;
  /** Names the kernel in errors (its path). */
  kernelName?: string;
  /** The kernel command line; checked against the header's cmdline_size. */
  commandLine?: string;
  /** An initramfs / initrd image. */
  initrd?: Uint8Array;
  initrdName?: string;
  /**
   * Where a bzImage's protected-mode part goes: 1 MiB (default, the
   * protocol's classic address), 'preferred' (pref_address), or an address
   * (4 KiB aligned, at least 1 MiB). A relocatable kernel runs from the next
   * kernel_alignment boundary at or above it, but not below pref_address.
   */
  loadAddress?: number | 'preferred';
  /** Write the MP table (default true). */
  mpTable?: boolean;
}

export interface AddressRange {
  base: number;
  size: number;
}

/** Fixed addresses of the boot structures (see the layout above). */
export const LINUX_LAYOUT = {
  bdaEbdaSegment: 0x40e,
  bdaBaseMemoryKiB: 0x413,
  gdt: 0x500,
  tss: 0x580,
  pageTables: 0x1000,
  pageTablesEnd: 0x7000,
  zeroPage: 0x7000,
  stack: 0x8000,
  stackTop: 0x9000,
  cmdline: 0x9000,
  cmdlineEnd: 0x10000,
  mpFloating: EBDA_START,
  mpConfigInEbda: EBDA_START + MP_FLOATING_SIZE,
  mpConfigInRom: BIOS_ROM_START,
  defaultLoadAddress: ONE_MIB,
} as const;

/** boot.rst "64-bit BOOT PROTOCOL": __BOOT_CS and __BOOT_DS. */
export const BOOT_CS = 0x10;
export const BOOT_DS = 0x18;
export const BOOT_TSS = 0x20;
const GDT_BYTES = BOOT_TSS + 16;

/** CR0.PE | MP | ET | NE | WP | PG (SDM vol. 3A §2.5). */
export const LINUX_CR0 = 0x8001_0033n;
/** CR4.PAE: 4-level paging; the kernel turns on what else it wants. */
export const LINUX_CR4 = 0x20n;
/** EFER.LME | LMA. */
export const LINUX_EFER = 0x500n;
/** RFLAGS: only the always-one bit; IF = 0 ("interrupt must be disabled"). */
export const LINUX_RFLAGS = 0x2n;
/** IA32_MTRR_DEF_TYPE: MTRRs enabled, default type write-back (no firmware programs them here). */
export const MSR_MTRR_DEF_TYPE = 0x2ff;
export const MTRR_DEF_TYPE_WB = 0x806n;

export type LinuxBootSregs = Pick<Sregs, 'cs' | 'ds' | 'es' | 'fs' | 'gs' | 'ss' | 'tr' | 'ldt' | 'gdt' | 'idt' | 'cr0' | 'cr3' | 'cr4' | 'efer'>;

export interface LinuxEntryState {
  regs: Regs;
  /** Applied over the vCPU's own sregs (APIC base, CR8, pending interrupts kept). */
  sregs: LinuxBootSregs;
  fpu: { fcw: number; mxcsr: number };
  /** Set on every vCPU. */
  msrs: MsrEntry[];
}

export interface LinuxBootReport {
  format: 'bzImage' | 'vmlinux';
  /** "2.15" for a bzImage; the synthesized header's version for a vmlinux. */
  protocol: string;
  image: BzImageInfo | VmlinuxInfo;
  kernel: {
    /** Where the protected-mode part (bzImage) or the first segment (vmlinux) went. */
    loadAddress: number;
    /** Bytes copied from the file. */
    bytes: number;
    /** The BSP's RIP. */
    entry: number;
    /** bzImage: where the decompressor will run (relocatable: aligned up, not below pref_address). */
    runAddress: number;
    /** Everything the kernel may write before it has read boot_params: load and decompression areas. */
    footprint: AddressRange;
  };
  zeroPage: AddressRange;
  cmdline: { address: number; /** with the NUL */ size: number; /** most bytes allowed (no NUL) */ limit: number };
  initrd: AddressRange | undefined;
  gdt: AddressRange;
  tss: AddressRange;
  pageTables: AddressRange & { cr3: number };
  stack: AddressRange;
  mpTable: { floatingPointer: number; configTable: AddressRange } | undefined;
  e820: E820Entry[];
  /** Every range the loader wrote, in order. */
  written: Array<AddressRange & { what: string }>;
  bsp: LinuxEntryState;
}

export interface LinuxBoot extends BootPlan {
  report: LinuxBootReport;
}

const alignUp = (n: number, a: number): number => Math.ceil(n / a) * a;
const alignDown = (n: number, a: number): number => Math.floor(n / a) * a;

/**
 * Guest RAM regions by address. They are not merged even when adjacent: a
 * GuestMemory access may not straddle two regions, so everything the loader
 * places goes inside the first one (low RAM, from address 0).
 */
function ramRanges(memory: GuestMemory): RamRange[] {
  return memory.regions
    .map((r) => ({ base: r.gpa, size: r.bytes.length }))
    .filter((r) => r.size > 0)
    .sort((a, b) => a.base - b.base);
}

interface KernelPlan {
  format: 'bzImage' | 'vmlinux';
  protocol: string;
  image: BzImageInfo | VmlinuxInfo;
  header: Uint8Array | undefined;
  /** [file offset, guest address, bytes to copy, bytes to zero after them]. */
  pieces: Array<{ from: number; to: number; copy: number; zero: number }>;
  loadAddress: number;
  runAddress: number;
  entry: number;
  footprint: AddressRange;
  cmdlineSize: number;
  initrdAddrMax: number;
}

function planBzImage(o: LinuxBootOptions, name: string, lowEnd: number): KernelPlan {
  const info = parseBzImage(o.kernel, name);
  const h = info.header;
  if (h.version < MIN_PROTOCOL_64BIT) {
    throw new LinuxLoaderError(`${name}: boot protocol ${protocolString(h.version)} is too old: the 64-bit entry point needs 2.12 or later (boot.rst, xloadflags)`);
  }
  if (!info.flags.loadedHigh) throw new LinuxLoaderError(`${name}: loadflags LOADED_HIGH is clear: a zImage (loaded at 0x10000), not a bzImage`);
  if (!info.flags.kernel64) throw new LinuxLoaderError(`${name}: xloadflags XLF_KERNEL_64 is clear: the kernel has no 64-bit entry point at 0x200`);
  if (info.headerEnd > Math.min(info.setupBytes, 0x290)) {
    throw new LinuxLoaderError(`${name}: the setup header claims to end at ${hex(info.headerEnd)}, past its setup sectors or boot_params' header area (0x290)`);
  }
  if (info.protectedModeBytes === 0) throw new LinuxLoaderError(`${name}: syssize is 0: no protected-mode kernel`);
  if (!info.complete) {
    throw new LinuxLoaderError(
      `${name}: truncated: setup (${info.setupBytes} bytes) + protected-mode kernel (syssize ${hex(h.syssize)} x 16 = ${info.protectedModeBytes} bytes) need ${info.setupBytes + info.protectedModeBytes} bytes, the file has ${o.kernel.length}`,
    );
  }
  const relocatable = info.flags.relocatable;
  const align = h.kernelAlignment;
  if (relocatable && (align < PAGE_SIZE || align > 2 ** 30 || (align & (align - 1)) !== 0)) {
    throw new LinuxLoaderError(`${name}: kernel_alignment ${hex(align)} is not a power of two between 4 KiB and 1 GiB`);
  }
  if (h.prefAddress > BigInt(2 ** 32) || h.prefAddress % BigInt(PAGE_SIZE) !== 0n) {
    throw new LinuxLoaderError(`${name}: pref_address 0x${h.prefAddress.toString(16)} is not a page-aligned address below 4 GiB`);
  }
  const pref = Number(h.prefAddress);
  if (h.initSize < info.protectedModeBytes) {
    throw new LinuxLoaderError(`${name}: init_size ${hex(h.initSize)} is smaller than the protected-mode kernel (${hex(info.protectedModeBytes)} bytes)`);
  }
  let load: number = LINUX_LAYOUT.defaultLoadAddress;
  if (o.loadAddress === 'preferred') {
    if (pref === 0) throw new LinuxLoaderError(`${name}: loadAddress 'preferred' but the header's pref_address is 0`);
    load = pref;
  } else if (o.loadAddress !== undefined) {
    load = o.loadAddress;
    if (!Number.isSafeInteger(load) || load < ONE_MIB || load % PAGE_SIZE !== 0) {
      throw new LinuxLoaderError(`loadAddress ${load} is not a 4 KiB-aligned address at or above 1 MiB`);
    }
  }
  // arch/x86/boot/compressed/head_64.S startup_64: a relocatable kernel decompresses at its load
  // address rounded up to kernel_alignment, but not below LOAD_PHYSICAL_ADDR (= pref_address);
  // a fixed one at LOAD_PHYSICAL_ADDR. It needs init_size bytes from there.
  const run = relocatable ? Math.max(alignUp(load, align), pref) : pref || load;
  const start = Math.min(load, run);
  const end = Math.max(load + info.protectedModeBytes, run + h.initSize);
  if (end > lowEnd) {
    throw new LinuxLoaderError(
      `memory too small for ${name}: loading at ${hex(load)} and decompressing at ${hex(run)} (init_size ${hex(h.initSize)}) needs RAM up to ${hex(end)}, low RAM ends at ${hex(lowEnd)}`,
    );
  }
  // boot.rst "64-bit BOOT PROTOCOL": the setup header is copied from 0x1f1 to 0x202 + byte at 0x201.
  return {
    format: 'bzImage',
    protocol: info.protocol,
    image: info,
    header: o.kernel.subarray(Hdr.SetupSects, info.headerEnd),
    pieces: [{ from: info.protectedModeOffset, to: load, copy: info.protectedModeBytes, zero: 0 }],
    loadAddress: load,
    runAddress: run,
    // boot.rst: "the kernel is started by jumping to the 64-bit kernel entry point, which is the
    // start address of loaded 64-bit kernel plus 0x200".
    entry: load + 0x200,
    footprint: { base: start, size: end - start },
    // cmdline_size (2.06+): "the maximum size of the command line without the terminating zero".
    cmdlineSize: h.cmdlineSize,
    // initrd_addr_max: "the maximum address that may be occupied by the initial ramdisk" (the last byte).
    initrdAddrMax: h.initrdAddrMax,
  };
}

function planVmlinux(o: LinuxBootOptions, name: string, lowEnd: number): KernelPlan {
  const info = parseVmlinux(o.kernel, name);
  if (info.start < ONE_MIB) throw new LinuxLoaderError(`${name}: PT_LOAD at ${hex(info.start)} is below 1 MiB, where the boot structures live`);
  if (info.end > lowEnd) throw new LinuxLoaderError(`memory too small for ${name}: its segments end at ${hex(info.end)}, low RAM ends at ${hex(lowEnd)}`);
  if (o.loadAddress !== undefined) throw new LinuxLoaderError(`${name}: loadAddress applies to a bzImage; a vmlinux goes where its program headers say`);
  return {
    format: 'vmlinux',
    protocol: protocolString(0x020c),
    image: info,
    header: undefined,
    pieces: info.segments.map((s) => ({ from: s.fileOffset, to: s.physical, copy: s.fileSize, zero: s.memSize - s.fileSize })),
    loadAddress: info.start,
    runAddress: info.start,
    entry: info.entry,
    footprint: { base: info.start, size: info.end - info.start },
    cmdlineSize: DEFAULT_CMDLINE_SIZE,
    initrdAddrMax: DEFAULT_INITRD_ADDR_MAX,
  };
}

function encodeCommandLine(text: string): Uint8Array {
  if (typeof text !== 'string') throw new LinuxLoaderError('commandLine is not a string');
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.includes(0)) throw new LinuxLoaderError('command line contains a NUL byte');
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  return out;
}

/** The kvm_segment values and the GDT bytes that agree with them. */
function gdtAndSegments(): { gdt: Uint8Array; cs: Segment; ds: Segment; tr: Segment } {
  const gdt = new Uint8Array(GDT_BYTES);
  const dv = new DataView(gdt.buffer);
  const put = (selector: number, d: SegmentDescriptor): void => {
    const [lo, hi] = encodeDescriptor(d);
    dv.setUint32(selector, lo, true);
    dv.setUint32(selector + 4, hi, true);
  };
  // boot.rst: "both descriptors must be 4G flat segment; __BOOT_CS must have execute/read
  // permission, and __BOOT_DS must have read/write permission". CS is 64-bit (L = 1): we enter
  // in long mode.
  put(BOOT_CS, KERNEL_CODE64);
  put(BOOT_DS, KERNEL_DATA);
  encodeTssDescriptor(LINUX_LAYOUT.tss).forEach((w, k) => dv.setUint32(BOOT_TSS + 4 * k, w, true));
  const tssDesc: SegmentDescriptor = { base: LINUX_LAYOUT.tss, limit: TSS64_SIZE - 1, type: 0xb, s: 0, dpl: 0, present: 1, avl: 0, l: 0, db: 0, g: 0 };
  return { gdt, cs: kvmSegment(BOOT_CS, KERNEL_CODE64), ds: kvmSegment(BOOT_DS, KERNEL_DATA), tr: kvmSegment(BOOT_TSS, tssDesc) };
}

function entryState(entry: number, cr3: number): LinuxEntryState {
  const { cs, ds, tr } = gdtAndSegments();
  const z = 0n;
  return {
    regs: {
      rax: z, rbx: z, rcx: z, rdx: z, rsi: BigInt(LINUX_LAYOUT.zeroPage), rdi: z, rsp: BigInt(LINUX_LAYOUT.stackTop), rbp: z,
      r8: z, r9: z, r10: z, r11: z, r12: z, r13: z, r14: z, r15: z,
      rip: BigInt(entry),
      rflags: LINUX_RFLAGS,
    },
    sregs: {
      cs,
      ds,
      es: { ...ds },
      fs: { ...ds },
      gs: { ...ds },
      ss: { ...ds },
      tr,
      ldt: unusableSegment(),
      gdt: { base: BigInt(LINUX_LAYOUT.gdt), limit: GDT_BYTES - 1 },
      // No IDT: interrupts are off and the kernel loads its own before anything can fault.
      idt: { base: 0n, limit: 0 },
      cr0: LINUX_CR0,
      cr3: BigInt(cr3),
      cr4: LINUX_CR4,
      efer: LINUX_EFER,
    },
    fpu: { fcw: 0x37f, mxcsr: 0x1f80 },
    msrs: [{ index: MSR_MTRR_DEF_TYPE, data: MTRR_DEF_TYPE_WB }],
  };
}

/**
 * Validates everything (kernel, initrd, command line, memory size, vCPU
 * count), then writes the kernel, initrd and boot structures into `memory`
 * and returns the BootPlan with a report of where everything went. On any
 * error it throws before writing a byte.
 */
export function loadLinux(memory: GuestMemory, cpus: number, o: LinuxBootOptions): LinuxBoot {
  const name = o.kernelName ?? 'kernel';
  const initrdName = o.initrdName ?? 'initrd';
  if (!(o.kernel instanceof Uint8Array)) throw new LinuxLoaderError('kernel is not a Uint8Array');
  if (!Number.isInteger(cpus) || cpus < 1 || cpus > MP_MAX_CPUS) throw new LinuxLoaderError(`cpus: ${cpus} is not 1..${MP_MAX_CPUS}`);
  const ram = ramRanges(memory);
  const low = ram[0];
  if (!low || low.base !== 0 || low.size <= ONE_MIB) {
    throw new LinuxLoaderError(`memory too small: Linux needs RAM from address 0 past 1 MiB (have ${low ? `[${hex(low.base)}, ${hex(low.base + low.size)})` : 'none'})`);
  }
  const lowEnd = Math.min(low.size, 2 ** 32);

  let k: KernelPlan;
  try {
    k = isElf(o.kernel) ? planVmlinux(o, name, lowEnd) : planBzImage(o, name, lowEnd);
  } catch (e) {
    if (e instanceof LinuxImageError) throw new LinuxLoaderError(e.message);
    throw e;
  }

  // Command line.
  const cmdline = encodeCommandLine(o.commandLine ?? '');
  const capacity = LINUX_LAYOUT.cmdlineEnd - LINUX_LAYOUT.cmdline - 1;
  const limit = Math.min(k.cmdlineSize, capacity);
  if (cmdline.length - 1 > limit) {
    const why = limit === k.cmdlineSize ? `${name} accepts at most ${k.cmdlineSize} (cmdline_size)` : `the loader's command-line area holds ${capacity}`;
    throw new LinuxLoaderError(`command line is ${cmdline.length - 1} bytes; ${why}`);
  }

  // Initrd: as high as allowed, page-aligned, above the kernel's footprint.
  let initrd: AddressRange | undefined;
  if (o.initrd !== undefined) {
    if (!(o.initrd instanceof Uint8Array)) throw new LinuxLoaderError(`${initrdName} is not a Uint8Array`);
    if (o.initrd.length === 0) throw new LinuxLoaderError(`${initrdName} is empty`);
    const top = Math.min(k.initrdAddrMax + 1, lowEnd);
    const floor = k.footprint.base + k.footprint.size;
    const base = alignDown(top - o.initrd.length, PAGE_SIZE);
    if (base < alignUp(floor, PAGE_SIZE)) {
      throw new LinuxLoaderError(
        `${initrdName}: ${o.initrd.length} bytes do not fit in guest RAM: the initrd must lie between the kernel's end ${hex(floor)} and ${hex(top)} (the lower of initrd_addr_max + 1 = ${hex(k.initrdAddrMax + 1)} and the end of low RAM)`,
      );
    }
    initrd = { base, size: o.initrd.length };
  }

  // Page tables: identity map of the first 4 GiB, 2 MiB pages; RAM write-back, the rest (the
  // PCI hole, the APICs) uncached. boot.rst asks only for the kernel, zero page and command line.
  const wb = Math.min(alignUp(lowEnd, 2 * ONE_MIB), 2 ** 32);
  const maps: MapRange[] = [{ base: 0, size: wb, user: false, writable: true }];
  if (wb < 2 ** 32) maps.push({ base: wb, size: 2 ** 32 - wb, user: false, writable: true, uncached: true });
  const ptArea = LINUX_LAYOUT.pageTablesEnd - LINUX_LAYOUT.pageTables;
  if (pageTableBytes(maps) > ptArea) throw new LinuxLoaderError(`page tables need ${pageTableBytes(maps)} bytes, the area holds ${ptArea}`);

  // MP table: in the EBDA's KiB when it fits (MP spec §4: "in the first kilobyte of the EBDA"),
  // else in the BIOS ROM area (§4: "between 0F0000h and 0FFFFFh").
  const mp = o.mpTable ?? true;
  const mpSize = mpConfigTableSize(cpus);
  const mpConfig = MP_FLOATING_SIZE + mpSize <= 0x400 ? LINUX_LAYOUT.mpConfigInEbda : LINUX_LAYOUT.mpConfigInRom;

  const reserved = [{ base: KVM_IDENTITY_MAP_ADDR, size: KVM_TSS_ADDR + 3 * PAGE_SIZE - KVM_IDENTITY_MAP_ADDR }].filter((r) => r.base >= lowEnd);
  const e820 = buildE820(ram, reserved);
  const zeroPage = buildBootParams({
    header: k.header,
    loadAddress: k.loadAddress,
    cmdLinePtr: LINUX_LAYOUT.cmdline,
    ramdisk: initrd && { image: initrd.base, size: initrd.size },
    e820,
  });

  // ---------------- nothing above wrote guest memory; now write ----------------
  const written: Array<AddressRange & { what: string }> = [];
  const put = (what: string, at: number, bytes: Uint8Array, from = 0, len = bytes.length - from): void => {
    if (len === 0) return;
    memory.write(at, bytes, from, len);
    written.push({ what, base: at, size: len });
  };
  const zero = (what: string, at: number, len: number): void => {
    if (len > 0) put(what, at, new Uint8Array(len));
  };
  const bda = new Uint8Array(2);
  new DataView(bda.buffer).setUint16(0, EBDA_START >> 4, true);
  put('BDA: EBDA segment', LINUX_LAYOUT.bdaEbdaSegment, bda);
  new DataView(bda.buffer).setUint16(0, EBDA_START >> 10, true);
  put('BDA: base memory KiB', LINUX_LAYOUT.bdaBaseMemoryKiB, bda);
  const { gdt } = gdtAndSegments();
  put('GDT', LINUX_LAYOUT.gdt, gdt);
  put('TSS', LINUX_LAYOUT.tss, buildTss(0));
  const ramBytes = memory.regions.find((r) => r.gpa === 0)!.bytes;
  const tables = buildIdentityPageTables(ramBytes, LINUX_LAYOUT.pageTables, ptArea, maps);
  written.push({ what: 'page tables', base: LINUX_LAYOUT.pageTables, size: tables.bytes });
  put('boot_params', LINUX_LAYOUT.zeroPage, zeroPage);
  zero('boot stack', LINUX_LAYOUT.stack, LINUX_LAYOUT.stackTop - LINUX_LAYOUT.stack);
  put('command line', LINUX_LAYOUT.cmdline, cmdline);
  let mpTable: LinuxBootReport['mpTable'];
  if (mp) {
    const table = buildMpConfigTable({ cpus });
    put('MP floating pointer', LINUX_LAYOUT.mpFloating, buildMpFloatingPointer(mpConfig));
    put('MP configuration table', mpConfig, table);
    mpTable = { floatingPointer: LINUX_LAYOUT.mpFloating, configTable: { base: mpConfig, size: table.length } };
  }
  for (const p of k.pieces) {
    put('kernel', p.to, o.kernel, p.from, p.copy);
    zero('kernel (zero-filled)', p.to + p.copy, p.zero);
  }
  if (initrd) put('initrd', initrd.base, o.initrd!);

  const bsp = entryState(k.entry, tables.cr3);
  const report: LinuxBootReport = {
    format: k.format,
    protocol: k.protocol,
    image: k.image,
    kernel: {
      loadAddress: k.loadAddress,
      bytes: k.pieces.reduce((n, p) => n + p.copy, 0),
      entry: k.entry,
      runAddress: k.runAddress,
      footprint: k.footprint,
    },
    zeroPage: { base: LINUX_LAYOUT.zeroPage, size: ZERO_PAGE_SIZE },
    cmdline: { address: LINUX_LAYOUT.cmdline, size: cmdline.length, limit },
    initrd,
    gdt: { base: LINUX_LAYOUT.gdt, size: GDT_BYTES },
    tss: { base: LINUX_LAYOUT.tss, size: TSS64_SIZE },
    pageTables: { base: LINUX_LAYOUT.pageTables, size: tables.bytes, cr3: tables.cr3 },
    stack: { base: LINUX_LAYOUT.stack, size: LINUX_LAYOUT.stackTop - LINUX_LAYOUT.stack },
    mpTable,
    e820,
    written,
    bsp,
  };
  return {
    report,
    setupVcpu(vcpu: Vcpu, index: number): void {
      vcpu.setMsrs(bsp.msrs);
      // Application processors keep KVM's reset state: with the in-kernel irqchip they wait
      // for INIT/SIPI, which the kernel sends to the APIC IDs the MP table lists.
      if (index !== 0) return;
      vcpu.setSregs({ ...vcpu.getSregs(), ...bsp.sregs });
      vcpu.setRegs(bsp.regs);
      vcpu.setFpu({ ...vcpu.getFpu(), ...bsp.fpu });
    },
  };
}

/** For MachineConfig.load: `load: linuxLoader({ kernel, commandLine, initrd })`. */
export function linuxLoader(o: LinuxBootOptions): (memory: GuestMemory, cpus: number) => LinuxBoot {
  return (memory, cpus) => loadLinux(memory, cpus, o);
}
