// struct boot_params, "the zero page" (Documentation/arch/x86/zero-page.rst),
// as the 64-bit boot protocol wants it (boot.rst, "64-bit BOOT PROTOCOL"):
// a zeroed 4 KiB page, the kernel's setup header copied in at 0x1f1, then
// the loader's fields filled in. Pure: builds bytes, writes no memory.
import { encodeE820, type E820Entry, E820_MAX_ENTRIES } from './e820';
import { BOOT_FLAG, Hdr, HDRS_MAGIC, LoadFlags, XLoadFlags } from './linux-image';

export const ZERO_PAGE_SIZE = 0x1000;

/** zero-page.rst offsets (the setup header's own fields are Hdr.*). */
export const enum Zp {
  AcpiRsdpAddr = 0x070,
  ExtRamdiskImage = 0x0c0,
  ExtRamdiskSize = 0x0c4,
  ExtCmdLinePtr = 0x0c8,
  E820Entries = 0x1e8,
  /** Must stay 0: a non-zero sentinel tells the kernel the loader copied garbage (sanitize_boot_params). */
  Sentinel = 0x1ef,
  /** struct setup_header begins here... */
  SetupHeader = 0x1f1,
  /** ...and the header area ends here (edd_mbr_sig_buffer follows). */
  SetupHeaderAreaEnd = 0x290,
  E820Table = 0x2d0,
}

/** boot.rst: type_of_loader 0xFF, "undefined" (a loader with no assigned ID). */
export const LOADER_TYPE_UNDEFINED = 0xff;
/**
 * boot.rst: heap_end_ptr is "the offset (from the beginning of the real-mode
 * code) of the end of the setup stack/heap, minus 0x0200". The real-mode code
 * never runs on the 64-bit entry; the whole 64 KiB setup segment is stated.
 */
export const HEAP_END_PTR = 0x10000 - 0x200;
/** x86 COMMAND_LINE_SIZE (2048) less the NUL: the cmdline_size a synthesized header states. */
export const DEFAULT_CMDLINE_SIZE = 2047;
/** boot.rst: initrd_addr_max of every 64-bit kernel's header.S. */
export const DEFAULT_INITRD_ADDR_MAX = 0x7fff_ffff;

export interface BootParamsInput {
  /** The setup header bytes to copy to 0x1f1 (from the kernel file), or undefined to synthesize one (vmlinux). */
  header: Uint8Array | undefined;
  /** Where the protected-mode kernel was loaded (code32_start). */
  loadAddress: number;
  cmdLinePtr: number;
  /** Where the initrd is, if there is one. */
  ramdisk: { image: number; size: number } | undefined;
  e820: readonly E820Entry[];
}

const lo32 = (v: number): number => v % 2 ** 32;
const hi32 = (v: number): number => Math.floor(v / 2 ** 32);

/**
 * The vmlinux case: there is no setup header in the file, so state what a
 * 2.12 header would (HdrS, 0xAA55, 64-bit entry, the usual limits). The
 * kernel needs version != 0 (x86_64_start_reservations takes 0 as "boot
 * data not copied yet").
 */
export function synthesizedHeader(): Uint8Array {
  const page = new Uint8Array(ZERO_PAGE_SIZE);
  const dv = new DataView(page.buffer);
  dv.setUint16(Hdr.BootFlag, BOOT_FLAG, true);
  dv.setUint32(Hdr.Header, HDRS_MAGIC, true);
  dv.setUint16(Hdr.Version, 0x020c, true);
  page[Hdr.Loadflags] = LoadFlags.LoadedHigh;
  dv.setUint32(Hdr.InitrdAddrMax, DEFAULT_INITRD_ADDR_MAX, true);
  dv.setUint32(Hdr.KernelAlignment, 0x20_0000, true);
  dv.setUint16(Hdr.Xloadflags, XLoadFlags.Kernel64, true);
  dv.setUint32(Hdr.CmdlineSize, DEFAULT_CMDLINE_SIZE, true);
  return page.slice(Zp.SetupHeader, Hdr.End);
}

/** Builds the zero page. */
export function buildBootParams(input: BootParamsInput): Uint8Array {
  const page = new Uint8Array(ZERO_PAGE_SIZE);
  const dv = new DataView(page.buffer);
  const header = input.header ?? synthesizedHeader();
  if (Zp.SetupHeader + header.length > Zp.SetupHeaderAreaEnd) throw new RangeError(`setup header of ${header.length} bytes overruns boot_params' header area`);
  page.set(header, Zp.SetupHeader);

  // boot.rst "64-bit BOOT PROTOCOL" / "DETAILS OF HEADER FIELDS": the loader's fields.
  page[Hdr.TypeOfLoader] = LOADER_TYPE_UNDEFINED;
  page[Hdr.ExtLoaderVer] = 0;
  page[Hdr.ExtLoaderType] = 0;
  // LOADED_HIGH is the kernel's (read) bit; CAN_USE_HEAP says heap_end_ptr is valid; not quiet.
  page[Hdr.Loadflags] = (page[Hdr.Loadflags]! | LoadFlags.CanUseHeap) & ~LoadFlags.QuietFlag & 0xff;
  dv.setUint16(Hdr.HeapEndPtr, HEAP_END_PTR, true);
  dv.setUint32(Hdr.Code32Start, lo32(input.loadAddress), true);
  dv.setUint32(Hdr.CmdLinePtr, lo32(input.cmdLinePtr), true);
  dv.setUint32(Zp.ExtCmdLinePtr, hi32(input.cmdLinePtr), true);
  const rd = input.ramdisk ?? { image: 0, size: 0 };
  dv.setUint32(Hdr.RamdiskImage, lo32(rd.image), true);
  dv.setUint32(Hdr.RamdiskSize, lo32(rd.size), true);
  dv.setUint32(Zp.ExtRamdiskImage, hi32(rd.image), true);
  dv.setUint32(Zp.ExtRamdiskSize, hi32(rd.size), true);
  // hardware_subarch 0: X86_SUBARCH_PC. No setup_data list: whatever the file said there is not ours to pass on.
  dv.setUint32(Hdr.HardwareSubarch, 0, true);
  dv.setBigUint64(Hdr.HardwareSubarchData, 0n, true);
  dv.setBigUint64(Hdr.SetupData, 0n, true);

  if (input.e820.length > E820_MAX_ENTRIES) throw new RangeError(`${input.e820.length} e820 entries, boot_params holds ${E820_MAX_ENTRIES}`);
  page[Zp.E820Entries] = input.e820.length;
  page.set(encodeE820(input.e820), Zp.E820Table);
  page[Zp.Sentinel] = 0;
  return page;
}
