// Loads a freestanding ELF64 guest (the PMD test guest, see
// guest-images/pmd/README.md) into guest RAM and prepares every vCPU to
// start in 64-bit mode at CPL 3, port I/O allowed by IOPL 3 and by each TSS's
// I/O permission bitmap (PVM hosts ignore IOPL for ring 3): the VMM does in TypeScript what
// a boot loader and kernel would do in ring 0, because on PVM hosts ring-0
// guest code is emulated ~1000x slower than ring 3 runs.
//
// Guest-physical layout (all computed; nothing the image says is trusted):
//   page 0                        not mapped (null pointers fault)
//   system block (first fit)      GDT, IDT, exception stubs, TSSs,
//                                 exception stacks, page tables:
//                                 supervisor-only pages; then the boot
//                                 infos and command line: user read-only
//   ELF PT_LOAD segments          where the image is linked (user pages)
//   free range                    the largest remaining gap (user pages)
//   vCPU stacks                   at the top of RAM, each with an unmapped
//                                 guard page below it
//   PCI MMIO window               user pages, PCD|PWT (uncached)
//   local APIC page (0xFEE00000)  user page, uncached
import type { Regs, Segment, Sregs } from '../../kvm/regs';
import { BOOT_INFO_SIZE, LAPIC_BASE, writeBootInfo } from './boot-info';
import { ElfError, type ElfSegment, parseElf64 } from './bare-metal-elf';
import { buildExceptionStubs, EXCEPTION_VECTORS, stubOffset } from './exception-stubs';
import {
  buildGdt,
  buildTss,
  encodeIdtGate,
  gdtSize,
  IDT_GATE_SIZE,
  kvmSegment,
  Selector,
  TSS64_WITH_IO_BITMAP_SIZE,
  tssSelector,
  unusableSegment,
  USER_CODE64,
  USER_DATA,
  type SegmentDescriptor,
} from './gdt';
import { buildIdentityPageTables, MAX_PHYSICAL, PAGE_SIZE, pageTableBytes, type MapRange } from './page-tables';
import { hex } from '../../hex';

export class LoaderError extends Error {
  override name = 'LoaderError';
}

export { ElfError };

export interface AddressRange {
  base: number;
  size: number;
}

export interface BareMetalOptions {
  /** Guest RAM: guest-physical [0, ram.length), zero-filled or not (the loader zeroes what it uses). */
  ram: Uint8Array;
  /** The ELF file. */
  image: Uint8Array;
  commandLine?: string;
  /** vCPUs that will enter the image (1..64). */
  vcpus?: number;
  /** PCI MMIO window: mapped uncached and passed to the guest. */
  mmio: AddressRange;
  /** Guest TSC frequency in kHz; 0 or absent: unknown (the guest may calibrate). */
  tscKhz?: number;
  /** Bytes of stack per vCPU (multiple of 4 KiB, default 64 KiB). */
  stackSize?: number;
  /**
   * RFLAGS.IOPL at entry (default 3). Port access from ring 3 is allowed by
   * the TSS I/O bitmap either way; 0 enters the guest as a PVM KVM runs it
   * (it does not keep IOPL for ring 3), so a test on any host sees what such
   * a host does.
   */
  iopl?: 0 | 3;
}

/** The sregs fields the loader decides; apply them over the vCPU's current sregs. */
export type BootSregs = Pick<Sregs, 'cs' | 'ds' | 'es' | 'fs' | 'gs' | 'ss' | 'tr' | 'ldt' | 'gdt' | 'idt' | 'cr0' | 'cr3' | 'cr4' | 'efer'>;

export interface VcpuBootState {
  index: number;
  regs: Regs;
  sregs: BootSregs;
  bootInfo: number;
  stackTop: number;
}

export interface BareMetalLayout {
  gdt: AddressRange;
  idt: AddressRange;
  stubs: AddressRange;
  tss: number[];
  bootInfo: number[];
  cmdline: AddressRange;
  /** Ring-0 stacks used only to report exceptions (TSS.RSP0), one page per vCPU. */
  exceptionStacks: AddressRange[];
  pageTables: AddressRange;
  /** Boot infos and command line (user read-only pages). */
  boot: AddressRange;
  /** Everything above as one block (supervisor-only but for `boot`). */
  system: AddressRange;
  stacks: AddressRange[];
  free: AddressRange;
  imageEnd: number;
}

export interface BareMetalBoot {
  entry: number;
  segments: ElfSegment[];
  layout: BareMetalLayout;
  vcpus: VcpuBootState[];
}

export const MAX_VCPUS = 64;
export const DEFAULT_STACK_SIZE = 64 * 1024;
export const MAX_CMDLINE = 4095;

/** CR0.PE | MP | ET | NE | WP | PG (SDM vol. 3A §2.5). */
export const BOOT_CR0 = 0x8001_0033n;
/** CR4.PAE | OSFXSR | OSXMMEXCPT: 4-level paging and SSE (SDM vol. 3A §2.5, §13.1.4). */
export const BOOT_CR4 = 0x620n;
/** EFER.LME | LMA (SDM vol. 3A §2.2.1). */
export const BOOT_EFER = 0x500n;
/** RFLAGS: IOPL = 3 (bits 13:12) and the always-one bit 1; IF = 0. */
export const BOOT_RFLAGS = 0x3002n;
/** The same with IOPL = 0. */
export const BOOT_RFLAGS_IOPL0 = 0x0002n;

/** Each vCPU's TSS carries an I/O bitmap allowing every port (see buildTss). */
const TSS_SIZE = TSS64_WITH_IO_BITMAP_SIZE;

const pageUp = (n: number): number => Math.ceil(n / PAGE_SIZE) * PAGE_SIZE;
const pageDown = (n: number): number => Math.floor(n / PAGE_SIZE) * PAGE_SIZE;

function overlaps(a: AddressRange, b: AddressRange): boolean {
  return a.base < b.base + b.size && b.base < a.base + a.size;
}

/** Gaps of [lo, hi) not covered by `used` (page-aligned ranges). */
function gaps(lo: number, hi: number, used: readonly AddressRange[]): AddressRange[] {
  const sorted = [...used].sort((a, b) => a.base - b.base);
  const out: AddressRange[] = [];
  let at = lo;
  for (const u of sorted) {
    if (u.base + u.size <= at) continue;
    if (u.base >= hi) break;
    if (u.base > at) out.push({ base: at, size: u.base - at });
    at = Math.max(at, u.base + u.size);
  }
  if (at < hi) out.push({ base: at, size: hi - at });
  return out;
}

/** The system block's part of the layout (the stacks and free RAM come after it). */
type SystemPlan = Omit<BareMetalLayout, 'stacks' | 'free' | 'imageEnd'>;

function layOutSystem(base: number, vcpus: number, cmdlineBytes: number, tablePages: number): SystemPlan {
  let at = base;
  const take = (bytes: number): AddressRange => {
    const r = { base: at, size: pageUp(bytes) };
    at += r.size;
    return r;
  };
  const gdt = take(gdtSize(vcpus));
  const idt = take(EXCEPTION_VECTORS * IDT_GATE_SIZE);
  const stubs = take(buildExceptionStubs().length);
  const tssArea = take(vcpus * TSS_SIZE);
  const exceptionStacks = Array.from({ length: vcpus }, () => take(PAGE_SIZE));
  const pageTables = take(tablePages * PAGE_SIZE);
  const bootArea = take(vcpus * BOOT_INFO_SIZE);
  const cmdline = take(cmdlineBytes);
  return {
    gdt: { base: gdt.base, size: gdtSize(vcpus) },
    idt: { base: idt.base, size: EXCEPTION_VECTORS * IDT_GATE_SIZE },
    stubs,
    tss: Array.from({ length: vcpus }, (_, i) => tssArea.base + i * TSS_SIZE),
    bootInfo: Array.from({ length: vcpus }, (_, i) => bootArea.base + i * BOOT_INFO_SIZE),
    cmdline,
    exceptionStacks,
    pageTables,
    boot: { base: bootArea.base, size: at - bootArea.base },
    system: { base, size: at - base },
  };
}

function checkOptions(o: BareMetalOptions): { vcpus: number; stackSize: number; cmdline: Uint8Array; tscKhz: number; iopl: 0 | 3 } {
  const ramSize = o.ram.length;
  if (ramSize % PAGE_SIZE !== 0 || ramSize < 1 << 20) throw new LoaderError(`ram: ${hex(ramSize)} bytes is not a multiple of 4 KiB of at least 1 MiB`);
  if (ramSize > MAX_PHYSICAL) throw new LoaderError('ram: larger than the 4-level identity map reaches (2^47)');
  const vcpus = o.vcpus ?? 1;
  if (!Number.isInteger(vcpus) || vcpus < 1 || vcpus > MAX_VCPUS) throw new LoaderError(`vcpus: ${vcpus} is not 1..${MAX_VCPUS}`);
  const stackSize = o.stackSize ?? DEFAULT_STACK_SIZE;
  if (!Number.isInteger(stackSize) || stackSize < PAGE_SIZE || stackSize % PAGE_SIZE !== 0) {
    throw new LoaderError(`stackSize: ${stackSize} is not a positive multiple of 4 KiB`);
  }
  const m = o.mmio;
  if (!Number.isSafeInteger(m.base) || !Number.isSafeInteger(m.size) || m.size <= 0 || m.base % PAGE_SIZE !== 0 || m.size % PAGE_SIZE !== 0) {
    throw new LoaderError(`mmio: window [${hex(m.base)}, +${hex(m.size)}) is not a 4 KiB-aligned range`);
  }
  if (m.base + m.size > MAX_PHYSICAL) throw new LoaderError('mmio: window ends above 2^47');
  if (m.base < ramSize) throw new LoaderError(`mmio: window at ${hex(m.base)} overlaps RAM [0, ${hex(ramSize)})`);
  const text = o.commandLine ?? '';
  if (text.length > MAX_CMDLINE) throw new LoaderError(`commandLine: ${text.length} characters, at most ${MAX_CMDLINE}`);
  // eslint-disable-next-line no-control-regex
  if (!/^[\x20-\x7e\t\n]*$/.test(text)) throw new LoaderError('commandLine: only printable ASCII, tab and newline');
  const cmdline = new Uint8Array(text.length + 1);
  for (let i = 0; i < text.length; i++) cmdline[i] = text.charCodeAt(i);
  const tscKhz = o.tscKhz ?? 0;
  if (!Number.isInteger(tscKhz) || tscKhz < 0 || tscKhz > 0xffff_ffff) throw new LoaderError(`tscKhz: ${tscKhz} is not a u32`);
  const iopl = o.iopl ?? 3;
  if (iopl !== 0 && iopl !== 3) throw new LoaderError(`iopl: ${String(iopl)} is not 0 or 3`);
  return { vcpus, stackSize, cmdline, tscKhz, iopl };
}

/**
 * Validates the image against the RAM it must fit in, then writes segments,
 * page tables, GDT/IDT/TSS, boot infos and command line into `ram`, and
 * returns each vCPU's entry state. Throws ElfError / LoaderError before
 * writing anything if the image or options are bad.
 */
export function loadBareMetal(o: BareMetalOptions): BareMetalBoot {
  const { vcpus, stackSize, cmdline, tscKhz, iopl } = checkOptions(o);
  const ram = o.ram;
  const ramSize = ram.length;
  const elf = parseElf64(o.image);

  // Segments: inside RAM, clear of page 0.
  for (const s of elf.segments) {
    const end = s.address + s.memSize;
    if (s.address < PAGE_SIZE) {
      throw new ElfError(`PT_LOAD segment ${s.index} at ${hex(s.address)} touches page 0, which stays unmapped`);
    }
    if (end > ramSize) {
      throw new ElfError(`PT_LOAD segment ${s.index} [${hex(s.address)}, ${hex(end)}) lies outside guest RAM [0, ${hex(ramSize)})`);
    }
  }
  const imageRanges = elf.segments.map((s) => ({ base: pageDown(s.address), size: pageUp(s.address + s.memSize) - pageDown(s.address) }));
  const imageEnd = Math.max(...elf.segments.map((s) => s.address + s.memSize));

  // Stacks from the top of RAM down, each with an unmapped guard page below.
  const stacks: AddressRange[] = [];
  let top = ramSize;
  for (let i = 0; i < vcpus; i++) {
    stacks.push({ base: top - stackSize, size: stackSize });
    top -= stackSize + PAGE_SIZE;
  }
  const stackArea = { base: top, size: ramSize - top };
  if (stackArea.base < PAGE_SIZE) throw new LoaderError(`ram: ${hex(ramSize)} bytes cannot hold ${vcpus} stacks of ${hex(stackSize)}`);
  for (const [i, r] of imageRanges.entries()) {
    if (overlaps(r, stackArea)) {
      const s = elf.segments[i]!;
      throw new ElfError(
        `PT_LOAD segment ${s.index} [${hex(s.address)}, ${hex(s.address + s.memSize)}) overlaps the vCPU stacks [${hex(stackArea.base)}, ${hex(ramSize)})`,
      );
    }
  }

  // The system block: first fit below the stacks, clear of the image. Its page tables map
  // ranges that depend on where it lands, so size and place it until both agree.
  const mmioRange: MapRange = { base: o.mmio.base, size: o.mmio.size, user: true, writable: true, uncached: true };
  let tablePages = 1;
  let sys: SystemPlan | undefined;
  let ranges: MapRange[] = [];
  for (let attempt = 0; attempt < 8; attempt++) {
    const size = layOutSystem(0, vcpus, cmdline.length, tablePages).system.size;
    const hole = gaps(PAGE_SIZE, stackArea.base, imageRanges).find((g) => g.size >= size);
    if (!hole) throw new LoaderError(`no room for the VMM's ${hex(size)}-byte system block next to the image`);
    sys = layOutSystem(hole.base, vcpus, cmdline.length, tablePages);
    ranges = mapRanges(ramSize, sys, stacks, mmioRange);
    const need = pageTableBytes(ranges) / PAGE_SIZE;
    if (need <= tablePages) break;
    tablePages = need;
    sys = undefined;
  }
  if (!sys) throw new LoaderError('page-table layout did not converge');

  // Free range: the largest gap left in RAM.
  const used = [...imageRanges, sys.system, stackArea];
  const free = gaps(PAGE_SIZE, ramSize, used).reduce<AddressRange>((best, g) => (g.size > best.size ? g : best), { base: 0, size: 0 });

  // ---- nothing above wrote to RAM; now write everything ----
  for (const s of elf.segments) {
    ram.set(o.image.subarray(s.fileOffset, s.fileOffset + s.fileSize), s.address);
    ram.fill(0, s.address + s.fileSize, s.address + s.memSize);
  }
  ram.fill(0, sys.system.base, sys.system.base + sys.system.size);
  const tables = buildIdentityPageTables(ram, sys.pageTables.base, sys.pageTables.size, ranges);
  ram.set(buildGdt(sys.tss, TSS_SIZE), sys.gdt.base);
  const stubs = buildExceptionStubs();
  ram.set(stubs, sys.stubs.base);
  for (let v = 0; v < EXCEPTION_VECTORS; v++) {
    ram.set(encodeIdtGate(sys.stubs.base + stubOffset(v)), sys.idt.base + v * IDT_GATE_SIZE);
  }
  for (let i = 0; i < vcpus; i++) {
    const ex = sys.exceptionStacks[i]!;
    ram.set(buildTss(ex.base + ex.size, 0, true), sys.tss[i]!);
  }
  ram.set(cmdline, sys.cmdline.base);
  const states: VcpuBootState[] = [];
  for (let i = 0; i < vcpus; i++) {
    const stack = stacks[i]!;
    const stackTop = stack.base + stack.size;
    writeBootInfo(ram, sys.bootInfo[i]!, {
      cmdlineAddr: sys.cmdline.base,
      cmdlineLen: cmdline.length - 1,
      ramSize,
      freeBase: free.base,
      freeSize: free.size,
      mmioBase: o.mmio.base,
      mmioSize: o.mmio.size,
      tscKhz,
      numVcpus: vcpus,
      vcpuIndex: i,
      stackTop,
      stackSize,
      imageEnd,
    });
    states.push({
      index: i,
      bootInfo: sys.bootInfo[i]!,
      stackTop,
      regs: entryRegs(elf.entry, stackTop, sys.bootInfo[i]!, iopl),
      sregs: entrySregs(tables.cr3, sys, i),
    });
  }

  return {
    entry: elf.entry,
    segments: elf.segments,
    vcpus: states,
    layout: {
      gdt: sys.gdt,
      idt: sys.idt,
      stubs: sys.stubs,
      tss: sys.tss,
      bootInfo: sys.bootInfo,
      cmdline: { base: sys.cmdline.base, size: cmdline.length },
      exceptionStacks: sys.exceptionStacks,
      pageTables: { base: sys.pageTables.base, size: tables.bytes },
      boot: sys.boot,
      system: sys.system,
      stacks,
      free,
      imageEnd,
    },
  };
}

/**
 * What the page tables map: RAM but page 0 and the guard pages below the
 * stacks, user read/write; the system block supervisor-only except its boot
 * infos and command line, which ring 3 reads but cannot change; the MMIO window.
 */
function mapRanges(ramSize: number, sys: SystemPlan, stacks: readonly AddressRange[], mmio: MapRange): MapRange[] {
  const guards = stacks.map((s) => ({ base: s.base - PAGE_SIZE, size: PAGE_SIZE }));
  const out: MapRange[] = gaps(PAGE_SIZE, ramSize, [sys.system, ...guards]).map((g) => ({ ...g, user: true, writable: true }));
  out.push({ base: sys.system.base, size: sys.boot.base - sys.system.base, user: false, writable: true });
  out.push({ ...sys.boot, user: true, writable: false });
  out.push(mmio);
  // The local APIC page: a ring-3 driver cannot take interrupts, but it can enable its APIC and see
  // an MSI-X message arrive in IRR (how the PMD guest's irq= mode waits for the device).
  if (LAPIC_BASE < mmio.base || LAPIC_BASE >= mmio.base + mmio.size) out.push({ base: LAPIC_BASE, size: PAGE_SIZE, user: true, writable: true, uncached: true });
  return out;
}

function entryRegs(entry: number, stackTop: number, bootInfo: number, iopl: 0 | 3): Regs {
  return {
    rax: 0n, rbx: 0n, rcx: 0n, rdx: 0n, rsi: 0n, rdi: BigInt(bootInfo), rsp: BigInt(stackTop), rbp: 0n,
    r8: 0n, r9: 0n, r10: 0n, r11: 0n, r12: 0n, r13: 0n, r14: 0n, r15: 0n,
    rip: BigInt(entry),
    rflags: iopl === 3 ? BOOT_RFLAGS : BOOT_RFLAGS_IOPL0,
  };
}

function entrySregs(cr3: number, sys: SystemPlan, vcpu: number): BootSregs {
  const data = kvmSegment(Selector.UserData, USER_DATA);
  const tssDescriptor: SegmentDescriptor = { base: 0, limit: TSS_SIZE - 1, type: 0xb, s: 0, dpl: 0, present: 1, avl: 0, l: 0, db: 0, g: 0 };
  const tr: Segment = kvmSegment(tssSelector(vcpu), tssDescriptor, sys.tss[vcpu]!);
  return {
    cs: kvmSegment(Selector.UserCode, USER_CODE64),
    ds: data,
    es: { ...data },
    fs: { ...data },
    gs: { ...data },
    ss: { ...data },
    tr,
    ldt: unusableSegment(),
    gdt: { base: BigInt(sys.gdt.base), limit: sys.gdt.size - 1 },
    idt: { base: BigInt(sys.idt.base), limit: EXCEPTION_VECTORS * IDT_GATE_SIZE - 1 },
    cr0: BOOT_CR0,
    cr3: BigInt(cr3),
    cr4: BOOT_CR4,
    efer: BOOT_EFER,
  };
}

/** The parts of a vCPU the boot state needs (src/kvm's Vcpu has them). */
export interface BootableVcpu {
  getSregs(): Sregs;
  setSregs(s: Sregs): void;
  setRegs(r: Regs): void;
}

/** Puts a vCPU in its entry state: the loader's sregs over the vCPU's own (APIC base, CR8, ... kept). */
export function applyBootState(vcpu: BootableVcpu, state: VcpuBootState): void {
  const s = vcpu.getSregs();
  vcpu.setSregs({ ...s, ...state.sregs });
  vcpu.setRegs(state.regs);
}
