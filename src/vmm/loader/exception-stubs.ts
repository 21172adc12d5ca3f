// Ring-0 exception stubs for directly-entered bare-metal guests. A ring-3
// guest cannot load an IDT, so without one any fault would triple-fault
// into an anonymous KVM_EXIT_SHUTDOWN. The VMM installs an IDT whose 32
// exception vectors push (error code, vector) and report the vector with a
// 32-bit OUT to the fault port; the VMM then reads the frame from the
// exception stack (RSP at the exit) and names the fault.
// Intel SDM vol. 3A §6.14.2 (64-bit mode stack frame), §6.3.1 / Table 6-1
// (which vectors push an error code).
import { FAULT_PORT } from './boot-info';

export const EXCEPTION_VECTORS = 32;
/** Bytes per vector stub. */
const STUB_SLOT = 16;
/** Offset of the common tail after the 32 slots. */
const COMMON = EXCEPTION_VECTORS * STUB_SLOT;

/** Vectors for which the CPU pushes an error code (SDM Table 6-1). */
export const ERROR_CODE_VECTORS: ReadonlySet<number> = new Set([8, 10, 11, 12, 13, 14, 17, 21, 29, 30]);

export const EXCEPTION_NAMES: readonly string[] = [
  '#DE divide error', '#DB debug', 'NMI', '#BP breakpoint', '#OF overflow', '#BR bound', '#UD invalid opcode',
  '#NM device not available', '#DF double fault', 'coprocessor segment overrun', '#TS invalid TSS',
  '#NP segment not present', '#SS stack fault', '#GP general protection', '#PF page fault', 'reserved 15',
  '#MF x87 error', '#AC alignment check', '#MC machine check', '#XM SIMD exception', '#VE virtualization',
  '#CP control protection', 'reserved 22', 'reserved 23', 'reserved 24', 'reserved 25', 'reserved 26',
  'reserved 27', '#HV hypervisor injection', '#VC VMM communication', '#SX security', 'reserved 31',
];

/** Machine code for the stubs, to be placed at `base`; stub i is at base + stubOffset(i). */
export function buildExceptionStubs(): Uint8Array {
  const code = new Uint8Array(COMMON + 16).fill(0x90);
  for (let v = 0; v < EXCEPTION_VECTORS; v++) {
    let at = v * STUB_SLOT;
    if (!ERROR_CODE_VECTORS.has(v)) {
      code.set([0x6a, 0x00], at); // push 0 (a uniform frame: vector, error code, RIP, CS, RFLAGS, RSP, SS)
      at += 2;
    }
    code.set([0x6a, v], at); // push imm8 vector
    at += 2;
    const rel = COMMON - (at + 5);
    code[at] = 0xe9; // jmp rel32 common
    new DataView(code.buffer).setInt32(at + 1, rel, true);
  }
  code.set(
    [
      0x66, 0xba, FAULT_PORT & 0xff, FAULT_PORT >> 8, // mov dx, FAULT_PORT
      0x8b, 0x04, 0x24, // mov eax, [rsp]   (the vector)
      0xef, // out dx, eax
      0xf4, // hlt   (the VMM stops the run at the OUT; this is only reached if it resumes)
      0xeb, 0xfd, // jmp back to hlt
    ],
    COMMON,
  );
  return code;
}

export function stubOffset(vector: number): number {
  return vector * STUB_SLOT;
}

export interface GuestFault {
  vector: number;
  name: string;
  errorCode: number;
  rip: number;
  cs: number;
  rflags: number;
  rsp: number;
  ss: number;
  /** CR2 for a page fault. */
  cr2?: number;
}

/**
 * Decodes the frame a stub left at `rsp` (the vCPU's RSP at the fault-port
 * exit): vector, error code, then the CPU's RIP, CS, RFLAGS, RSP, SS.
 */
export function readGuestFault(ram: Uint8Array, rsp: number, cr2?: number): GuestFault | undefined {
  if (!Number.isSafeInteger(rsp) || rsp < 0 || rsp + 56 > ram.length) return undefined;
  const dv = new DataView(ram.buffer, ram.byteOffset, ram.byteLength);
  const q = (i: number): number => dv.getUint32(rsp + 8 * i, true) + dv.getUint32(rsp + 8 * i + 4, true) * 2 ** 32;
  const vector = q(0);
  const f: GuestFault = {
    vector,
    name: EXCEPTION_NAMES[vector] ?? `vector ${vector}`,
    errorCode: q(1),
    rip: q(2),
    cs: q(3),
    rflags: q(4),
    rsp: q(5),
    ss: q(6),
  };
  if (vector === 14 && cr2 !== undefined) f.cr2 = cr2;
  return f;
}

export function describeGuestFault(f: GuestFault): string {
  const h = (n: number): string => `0x${n.toString(16)}`;
  return (
    `guest exception ${f.vector} (${f.name}) error code ${h(f.errorCode)} at rip ${h(f.rip)} cs ${h(f.cs)} ` +
    `rsp ${h(f.rsp)} rflags ${h(f.rflags)}${f.cr2 !== undefined ? ` cr2 ${h(f.cr2)}` : ''}`
  );
}
