// struct xdpvm_boot_info (guest-images/pmd/include/xdpvm_boot.h): what the
// VMM tells a directly-entered bare-metal guest, one per vCPU. The offsets
// here and the header's XDPVM_BOOT_OFF_* must agree (a test reads the header).

export const BOOT_INFO_MAGIC = 0x5650_4458; // "XDPV"
export const BOOT_INFO_VERSION = 1;
export const BOOT_INFO_SIZE = 128;
export const BOOT_INFO_FLAG_TSC_KHZ = 1;

/** Ports of the bare-metal contract. */
export const UART_PORT = 0x3f8;
export const DEBUG_EXIT_PORT = 0x501;
export const FAULT_PORT = 0x502;
/** The local APIC's page (xAPIC default base), mapped user read/write uncached: the guest enables its APIC and reads IRR. */
export const LAPIC_BASE = 0xfee0_0000;

export const BootInfoOffset = {
  MAGIC: 0,
  VERSION: 4,
  SIZE: 6,
  CMDLINE_ADDR: 8,
  CMDLINE_LEN: 16,
  FLAGS: 20,
  RAM_SIZE: 24,
  FREE_BASE: 32,
  FREE_SIZE: 40,
  MMIO_BASE: 48,
  MMIO_SIZE: 56,
  TSC_KHZ: 64,
  NUM_VCPUS: 68,
  VCPU_INDEX: 72,
  STACK_TOP: 80,
  STACK_SIZE: 88,
  UART_PORT: 96,
  EXIT_PORT: 98,
  FAULT_PORT: 100,
  IMAGE_END: 104,
} as const;

export interface BootInfo {
  cmdlineAddr: number;
  cmdlineLen: number;
  ramSize: number;
  freeBase: number;
  freeSize: number;
  mmioBase: number;
  mmioSize: number;
  /** 0 when unknown. */
  tscKhz: number;
  numVcpus: number;
  vcpuIndex: number;
  stackTop: number;
  stackSize: number;
  imageEnd: number;
}

function setU64(dv: DataView, at: number, v: number): void {
  if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`boot info: ${v} is not a u64 below 2^53`);
  dv.setUint32(at, v % 2 ** 32, true);
  dv.setUint32(at + 4, Math.floor(v / 2 ** 32), true);
}

/** Writes the 128-byte struct at `at` in `ram` (guest RAM at GPA 0). */
export function writeBootInfo(ram: Uint8Array, at: number, b: BootInfo): void {
  const dv = new DataView(ram.buffer, ram.byteOffset + at, BOOT_INFO_SIZE);
  new Uint8Array(ram.buffer, ram.byteOffset + at, BOOT_INFO_SIZE).fill(0);
  const O = BootInfoOffset;
  dv.setUint32(O.MAGIC, BOOT_INFO_MAGIC, true);
  dv.setUint16(O.VERSION, BOOT_INFO_VERSION, true);
  dv.setUint16(O.SIZE, BOOT_INFO_SIZE, true);
  setU64(dv, O.CMDLINE_ADDR, b.cmdlineAddr);
  dv.setUint32(O.CMDLINE_LEN, b.cmdlineLen, true);
  dv.setUint32(O.FLAGS, b.tscKhz > 0 ? BOOT_INFO_FLAG_TSC_KHZ : 0, true);
  setU64(dv, O.RAM_SIZE, b.ramSize);
  setU64(dv, O.FREE_BASE, b.freeBase);
  setU64(dv, O.FREE_SIZE, b.freeSize);
  setU64(dv, O.MMIO_BASE, b.mmioBase);
  setU64(dv, O.MMIO_SIZE, b.mmioSize);
  dv.setUint32(O.TSC_KHZ, b.tscKhz >>> 0, true);
  dv.setUint32(O.NUM_VCPUS, b.numVcpus, true);
  dv.setUint32(O.VCPU_INDEX, b.vcpuIndex, true);
  setU64(dv, O.STACK_TOP, b.stackTop);
  setU64(dv, O.STACK_SIZE, b.stackSize);
  dv.setUint16(O.UART_PORT, UART_PORT, true);
  dv.setUint16(O.EXIT_PORT, DEBUG_EXIT_PORT, true);
  dv.setUint16(O.FAULT_PORT, FAULT_PORT, true);
  setU64(dv, O.IMAGE_END, b.imageEnd);
}

/** Reads a boot info back (tests, debugging). */
export function readBootInfo(ram: Uint8Array, at: number): BootInfo & { magic: number; version: number; size: number; flags: number } {
  const dv = new DataView(ram.buffer, ram.byteOffset + at, BOOT_INFO_SIZE);
  const O = BootInfoOffset;
  const u64 = (o: number): number => dv.getUint32(o, true) + dv.getUint32(o + 4, true) * 2 ** 32;
  return {
    magic: dv.getUint32(O.MAGIC, true),
    version: dv.getUint16(O.VERSION, true),
    size: dv.getUint16(O.SIZE, true),
    flags: dv.getUint32(O.FLAGS, true),
    cmdlineAddr: u64(O.CMDLINE_ADDR),
    cmdlineLen: dv.getUint32(O.CMDLINE_LEN, true),
    ramSize: u64(O.RAM_SIZE),
    freeBase: u64(O.FREE_BASE),
    freeSize: u64(O.FREE_SIZE),
    mmioBase: u64(O.MMIO_BASE),
    mmioSize: u64(O.MMIO_SIZE),
    tscKhz: dv.getUint32(O.TSC_KHZ, true),
    numVcpus: dv.getUint32(O.NUM_VCPUS, true),
    vcpuIndex: dv.getUint32(O.VCPU_INDEX, true),
    stackTop: u64(O.STACK_TOP),
    stackSize: u64(O.STACK_SIZE),
    imageEnd: u64(O.IMAGE_END),
  };
}
