// A minimal eBPF instruction encoder: enough for the small XDP programs this
// project loads (redirect by queue, count and drop), so no compiler is needed.
// Encoding: include/uapi/linux/bpf.h and Documentation/bpf/standardization.

const INSN_BYTES = 8;

// Classes, sizes, modes, operations and sources (bpf.h / bpf_common.h).
export const BPF = {
  LD: 0x00, LDX: 0x01, ST: 0x02, STX: 0x03, ALU: 0x04, JMP: 0x05, ALU64: 0x07,
  W: 0x00, H: 0x08, B: 0x10, DW: 0x18,
  IMM: 0x00, MEM: 0x60, ATOMIC: 0xc0,
  ADD: 0x00, SUB: 0x10, MOV: 0xb0,
  JEQ: 0x10, JNE: 0x50, CALL: 0x80, EXIT: 0x90,
  K: 0x00, X: 0x08,
  PSEUDO_MAP_FD: 1,
} as const;

export const enum Reg { R0 = 0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10 }

export const BpfHelper = { mapLookupElem: 1, ktimeGetNs: 5, redirectMap: 51 } as const;
export const XdpAction = { ABORTED: 0, DROP: 1, PASS: 2, TX: 3, REDIRECT: 4 } as const;
/** Offsets in struct xdp_md (the XDP program's context). */
export const XdpMd = { data: 0, dataEnd: 4, dataMeta: 8, ingressIfindex: 12, rxQueueIndex: 16 } as const;

type Size = typeof BPF.W | typeof BPF.H | typeof BPF.B | typeof BPF.DW;

/** Builds a program instruction by instruction; `bytes()` is what BPF_PROG_LOAD takes. */
export class BpfProgram {
  private readonly words: number[] = [];

  private insn(code: number, dst: Reg, src: number, off: number, imm: number): this {
    this.words.push(code, (src << 4) | dst, off, imm);
    return this;
  }

  get length(): number {
    return this.words.length / 4;
  }

  movImm(dst: Reg, imm: number): this {
    return this.insn(BPF.ALU64 | BPF.MOV | BPF.K, dst, 0, 0, imm);
  }
  movReg(dst: Reg, src: Reg): this {
    return this.insn(BPF.ALU64 | BPF.MOV | BPF.X, dst, src, 0, 0);
  }
  addImm(dst: Reg, imm: number): this {
    return this.insn(BPF.ALU64 | BPF.ADD | BPF.K, dst, 0, 0, imm);
  }
  load(size: Size, dst: Reg, src: Reg, off: number): this {
    return this.insn(BPF.LDX | BPF.MEM | size, dst, src, off, 0);
  }
  store(size: Size, dst: Reg, src: Reg, off: number): this {
    return this.insn(BPF.STX | BPF.MEM | size, dst, src, off, 0);
  }
  storeImm(size: Size, dst: Reg, off: number, imm: number): this {
    return this.insn(BPF.ST | BPF.MEM | size, dst, 0, off, imm);
  }
  /** *(size *)(dst + off) += src, atomically. */
  atomicAdd(size: typeof BPF.W | typeof BPF.DW, dst: Reg, src: Reg, off: number): this {
    return this.insn(BPF.STX | BPF.ATOMIC | size, dst, src, off, BPF.ADD);
  }
  /** dst = map (by fd; the kernel turns it into the map pointer). Two slots. */
  loadMapFd(dst: Reg, mapFd: number): this {
    this.insn(BPF.LD | BPF.DW | BPF.IMM, dst, BPF.PSEUDO_MAP_FD, 0, mapFd);
    return this.insn(0, 0, 0, 0, 0);
  }
  /** if dst == imm goto +off (off counted in instructions after this one). */
  jeqImm(dst: Reg, imm: number, off: number): this {
    return this.insn(BPF.JMP | BPF.JEQ | BPF.K, dst, 0, off, imm);
  }
  /** if dst != imm goto +off. */
  jneImm(dst: Reg, imm: number, off: number): this {
    return this.insn(BPF.JMP | BPF.JNE | BPF.K, dst, 0, off, imm);
  }
  call(helper: number): this {
    return this.insn(BPF.JMP | BPF.CALL, 0, 0, 0, helper);
  }
  exit(): this {
    return this.insn(BPF.JMP | BPF.EXIT, 0, 0, 0, 0);
  }

  bytes(): Uint8Array {
    const out = new Uint8Array(this.length * INSN_BYTES);
    const dv = new DataView(out.buffer);
    for (let i = 0; i < this.length; i++) {
      const [code, regs, off, imm] = this.words.slice(i * 4, i * 4 + 4) as [number, number, number, number];
      dv.setUint8(i * 8, code);
      dv.setUint8(i * 8 + 1, regs);
      dv.setInt16(i * 8 + 2, off, true);
      dv.setInt32(i * 8 + 4, imm, true);
    }
    return out;
  }
}
