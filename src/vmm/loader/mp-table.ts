// Intel MultiProcessor Specification 1.4 tables: how a guest without ACPI
// learns its CPUs, its I/O APIC and how the ISA interrupts reach it.
// Chapter 4, "MP Configuration Data Structures": the MP floating pointer
// structure (§4.1, Table 4-1) and the MP configuration table (§4.2 header,
// Table 4-2; §4.3 base entries, in ascending entry-type order).

export const MP_FLOATING_SIZE = 16;
export const MP_HEADER_SIZE = 44;
export const MP_PROCESSOR_SIZE = 20;
export const MP_ENTRY_SIZE = 8;

/** §4.1: spec revision 1.4. */
export const MP_SPEC_REV = 4;
export const LAPIC_DEFAULT_ADDRESS = 0xfee0_0000;
export const IOAPIC_DEFAULT_ADDRESS = 0xfec0_0000;
/** Version register values of KVM's in-kernel local APIC and I/O APIC. */
export const LAPIC_VERSION = 0x14;
export const IOAPIC_VERSION = 0x11;
/** APIC IDs are 8 bits and the I/O APIC takes the ID after the last CPU's. */
export const MP_MAX_CPUS = 254;
export const ISA_IRQS = 16;

export const enum MpEntry {
  Processor = 0,
  Bus = 1,
  IoApic = 2,
  IoInterrupt = 3,
  LocalInterrupt = 4,
}

/** §4.3.4, Table 4-8: interrupt types. */
export const enum MpIrqType {
  Int = 0,
  Nmi = 1,
  Smi = 2,
  ExtInt = 3,
}

export const enum MpCpuFlags {
  Enabled = 1 << 0,
  BootProcessor = 1 << 1,
}

export const MP_BUS_PCI = 0;
export const MP_BUS_ISA = 1;

export interface MpTableOptions {
  cpus: number;
  /** Default: `cpus` (the first ID after the CPUs' 0..cpus-1). */
  ioapicId?: number;
  ioapicAddress?: number;
  lapicAddress?: number;
  /** §4.3.1 CPU signature (stepping 3:0, model 7:4, family 11:8); default family 6. */
  cpuSignature?: number;
  /** §4.3.1 feature flags (CPUID.1:EDX); default FPU | APIC. */
  featureFlags?: number;
}

/** Bytes of the MP configuration table (header and base entries) for `cpus` CPUs. */
export function mpConfigTableSize(cpus: number): number {
  // processors, PCI + ISA buses, one I/O APIC, 16 ISA interrupts, ExtINT + NMI local interrupts
  return MP_HEADER_SIZE + cpus * MP_PROCESSOR_SIZE + (2 + 1 + ISA_IRQS + 2) * MP_ENTRY_SIZE;
}

/** Two's-complement byte checksum: the value that makes the bytes sum to 0 mod 256. */
export function checksum(bytes: Uint8Array): number {
  let sum = 0;
  for (const b of bytes) sum = (sum + b) & 0xff;
  return (0x100 - sum) & 0xff;
}

function ascii(out: Uint8Array, at: number, text: string, width: number): void {
  for (let i = 0; i < width; i++) out[at + i] = i < text.length ? text.charCodeAt(i) : 0x20;
}

/** §4.2: the MP configuration table with its base entries, checksummed. */
export function buildMpConfigTable(o: MpTableOptions): Uint8Array {
  const cpus = o.cpus;
  if (!Number.isInteger(cpus) || cpus < 1 || cpus > MP_MAX_CPUS) throw new RangeError(`MP table: ${cpus} CPUs is not 1..${MP_MAX_CPUS}`);
  const ioapicId = o.ioapicId ?? cpus;
  if (!Number.isInteger(ioapicId) || ioapicId < cpus || ioapicId > 0xff) throw new RangeError(`MP table: I/O APIC ID ${ioapicId} collides with a CPU or is not 8 bits`);
  const size = mpConfigTableSize(cpus);
  const out = new Uint8Array(size);
  const dv = new DataView(out.buffer);
  // Table 4-2: header.
  ascii(out, 0, 'PCMP', 4);
  dv.setUint16(4, size, true); // base table length
  out[6] = MP_SPEC_REV;
  ascii(out, 8, 'XDPVM', 8); // OEM ID
  ascii(out, 16, 'XDPVM', 12); // product ID
  // OEM table pointer / size 0: none.
  const entries = cpus + 2 + 1 + ISA_IRQS + 2;
  dv.setUint16(34, entries, true);
  dv.setUint32(36, o.lapicAddress ?? LAPIC_DEFAULT_ADDRESS, true);
  // Extended table length / checksum 0: no extended entries.
  let at = MP_HEADER_SIZE;
  // §4.3.1, Table 4-4: one processor entry per vCPU; APIC ID = vCPU index (what KVM gives vCPU i).
  for (let i = 0; i < cpus; i++) {
    out[at] = MpEntry.Processor;
    out[at + 1] = i;
    out[at + 2] = LAPIC_VERSION;
    out[at + 3] = MpCpuFlags.Enabled | (i === 0 ? MpCpuFlags.BootProcessor : 0);
    dv.setUint32(at + 4, o.cpuSignature ?? 0x600, true);
    dv.setUint32(at + 8, o.featureFlags ?? 0x201, true);
    at += MP_PROCESSOR_SIZE;
  }
  // §4.3.2, Table 4-5: buses. PCI first, so Linux maps MP bus 0 to PCI bus 0.
  for (const [id, type] of [[MP_BUS_PCI, 'PCI'], [MP_BUS_ISA, 'ISA']] as const) {
    out[at] = MpEntry.Bus;
    out[at + 1] = id;
    ascii(out, at + 2, type, 6);
    at += MP_ENTRY_SIZE;
  }
  // §4.3.3, Table 4-6: the I/O APIC, enabled.
  out[at] = MpEntry.IoApic;
  out[at + 1] = ioapicId;
  out[at + 2] = IOAPIC_VERSION;
  out[at + 3] = 1;
  dv.setUint32(at + 4, o.ioapicAddress ?? IOAPIC_DEFAULT_ADDRESS, true);
  at += MP_ENTRY_SIZE;
  // §4.3.4, Table 4-7: ISA IRQ n -> I/O APIC input n, polarity and trigger as the ISA bus defines
  // them (flags 0). That is KVM's default GSI routing (GSI n -> IOAPIC pin n for n < 16, the
  // in-kernel PIT on GSI 0).
  for (let irq = 0; irq < ISA_IRQS; irq++) {
    out[at] = MpEntry.IoInterrupt;
    out[at + 1] = MpIrqType.Int;
    dv.setUint16(at + 2, 0, true);
    out[at + 4] = MP_BUS_ISA;
    out[at + 5] = irq;
    out[at + 6] = ioapicId;
    out[at + 7] = irq;
    at += MP_ENTRY_SIZE;
  }
  // §4.3.5, Table 4-9: virtual-wire wiring of every local APIC: ExtINT on LINT0, NMI on LINT1.
  for (const [type, lint] of [[MpIrqType.ExtInt, 0], [MpIrqType.Nmi, 1]] as const) {
    out[at] = MpEntry.LocalInterrupt;
    out[at + 1] = type;
    dv.setUint16(at + 2, 0, true);
    out[at + 4] = MP_BUS_ISA;
    out[at + 5] = 0;
    out[at + 6] = 0xff; // all local APICs
    out[at + 7] = lint;
    at += MP_ENTRY_SIZE;
  }
  out[7] = checksum(out);
  return out;
}

/** §4.1, Table 4-1: the floating pointer, pointing at the configuration table. */
export function buildMpFloatingPointer(configTableAddress: number): Uint8Array {
  if (!Number.isInteger(configTableAddress) || configTableAddress <= 0 || configTableAddress > 0xffff_ffff) {
    throw new RangeError(`MP floating pointer: table address ${configTableAddress} is not a 32-bit physical address`);
  }
  const out = new Uint8Array(MP_FLOATING_SIZE);
  const dv = new DataView(out.buffer);
  ascii(out, 0, '_MP_', 4);
  dv.setUint32(4, configTableAddress, true);
  out[8] = 1; // length in 16-byte paragraphs
  out[9] = MP_SPEC_REV;
  // Feature byte 1 = 0: a configuration table is present (no default configuration).
  // Feature byte 2 bit 7 (IMCRP) = 0: virtual wire mode, no IMCR to program.
  out[10] = checksum(out);
  return out;
}
