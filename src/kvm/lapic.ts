// The local APIC register page as KVM_GET_LAPIC / KVM_SET_LAPIC exchange it
// (1 KiB: the xAPIC MMIO registers at their usual offsets). Enough to enable
// the APIC and to see which vectors are requested (IRR) or in service (ISR).
export const enum LapicReg {
  Id = 0x20,
  Version = 0x30,
  Tpr = 0x80,
  Eoi = 0xb0,
  Ldr = 0xd0,
  Dfr = 0xe0,
  Svr = 0xf0,
  Isr = 0x100,
  Tmr = 0x180,
  Irr = 0x200,
  Icr = 0x300,
  LvtTimer = 0x320,
  LvtLint0 = 0x350,
  LvtLint1 = 0x360,
}

/** SVR bit 8: the APIC is software-enabled (it accepts fixed interrupts only then). */
export const SVR_APIC_ENABLED = 0x100;

export function readLapicReg(regs: Uint8Array, reg: number): number {
  return new DataView(regs.buffer, regs.byteOffset, regs.byteLength).getUint32(reg, true);
}

export function writeLapicReg(regs: Uint8Array, reg: number, value: number): void {
  new DataView(regs.buffer, regs.byteOffset, regs.byteLength).setUint32(reg, value >>> 0, true);
}

// IRR, ISR and TMR are 256-bit maps spread over eight 32-bit registers 16 bytes apart.
function vectorBit(regs: Uint8Array, base: number, vector: number): boolean {
  return ((readLapicReg(regs, base + (vector >>> 5) * 0x10) >>> (vector & 31)) & 1) === 1;
}

export function lapicIrr(regs: Uint8Array, vector: number): boolean {
  return vectorBit(regs, LapicReg.Irr, vector);
}

export function lapicIsr(regs: Uint8Array, vector: number): boolean {
  return vectorBit(regs, LapicReg.Isr, vector);
}
