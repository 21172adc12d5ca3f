// An 8250/16550A UART at 0x3F8 (COM1), enough for a console: transmit to a
// sink, receive from a queue, DLAB divisor latch, scratch register, and the
// THR-empty / data-ready interrupt on IRQ 4 when the guest enables them.
import type { PortIoDevice } from './port-io-bus';

export const COM1_BASE = 0x3f8;
export const COM1_IRQ = 4;

const RBR_THR = 0; // DLL with DLAB
const IER = 1; // DLM with DLAB
const IIR_FCR = 2;
const LCR = 3;
const MCR = 4;
const LSR = 5;
const MSR = 6;
const SCR = 7;

const LCR_DLAB = 0x80;
const LSR_DR = 0x01;
const LSR_THRE = 0x20;
const LSR_TEMT = 0x40;
const IER_RDI = 0x01;
const IER_THRI = 0x02;
const IIR_NONE = 0x01;
const IIR_THRI = 0x02;
const IIR_RDI = 0x04;
const IIR_FIFO = 0xc0;
const MCR_LOOP = 0x10;

export class Serial8250 implements PortIoDevice {
  private ier = 0;
  private lcr = 0x03;
  private mcr = 0x08;
  private scr = 0;
  private dll = 0x0c;
  private dlm = 0;
  private fifoEnabled = false;
  private thrInterruptPending = false;
  private readonly input: number[] = [];
  private irqLevel = false;

  constructor(
    private readonly base: number,
    private readonly output: (byte: number) => void,
    private readonly irq: (level: boolean) => void = () => {},
    /** Told when txOnlyOutput changes. */
    private readonly txOnlyOutputChanged: (on: boolean) => void = () => {},
  ) {}

  /**
   * Whether a write to the transmit register is only output: the THR-empty interrupt is off and the UART is not
   * in loopback, so applying it later (KVM's coalesced writes, before the guest's next exit) changes nothing the
   * guest can see.
   */
  get txOnlyOutput(): boolean {
    return (this.ier & IER_THRI) === 0 && (this.mcr & MCR_LOOP) === 0 && (this.lcr & LCR_DLAB) === 0;
  }

  /** Bytes typed at the console (stdin) for the guest to read. */
  feed(bytes: Uint8Array): void {
    for (const b of bytes) this.input.push(b);
    this.updateIrq();
  }

  read(port: number, data: Uint8Array): void {
    data.fill(0);
    data[0] = this.readReg(port - this.base);
  }

  write(port: number, data: Uint8Array): void {
    this.writeReg(port - this.base, data[0]!);
  }

  private readReg(reg: number): number {
    const dlab = (this.lcr & LCR_DLAB) !== 0;
    switch (reg) {
      case RBR_THR:
        if (dlab) return this.dll;
        {
          const b = this.input.shift() ?? 0;
          this.updateIrq();
          return b;
        }
      case IER:
        return dlab ? this.dlm : this.ier;
      case IIR_FCR: {
        const fifo = this.fifoEnabled ? IIR_FIFO : 0;
        if ((this.ier & IER_RDI) !== 0 && this.input.length > 0) return IIR_RDI | fifo;
        if (this.thrInterruptPending && (this.ier & IER_THRI) !== 0) {
          // Reading IIR clears a THR-empty interrupt (16550A).
          this.thrInterruptPending = false;
          this.updateIrq();
          return IIR_THRI | fifo;
        }
        return IIR_NONE | fifo;
      }
      case LCR:
        return this.lcr;
      case MCR:
        return this.mcr;
      case LSR:
        // Transmission is instant: the holding register is always empty.
        return LSR_THRE | LSR_TEMT | (this.input.length > 0 ? LSR_DR : 0);
      case MSR:
        // Loopback mode reflects MCR's outputs; otherwise CTS, DSR, DCD asserted.
        return (this.mcr & MCR_LOOP) !== 0 ? ((this.mcr & 0x0f) << 4) : 0xb0;
      case SCR:
        return this.scr;
      default:
        return 0;
    }
  }

  private writeReg(reg: number, v: number): void {
    const before = this.txOnlyOutput;
    this.applyWrite(reg, v);
    if (this.txOnlyOutput !== before) this.txOnlyOutputChanged(!before);
  }

  private applyWrite(reg: number, v: number): void {
    const dlab = (this.lcr & LCR_DLAB) !== 0;
    switch (reg) {
      case RBR_THR:
        if (dlab) this.dll = v;
        else {
          if ((this.mcr & MCR_LOOP) !== 0) this.input.push(v);
          else this.output(v);
          this.thrInterruptPending = true;
          this.updateIrq();
        }
        break;
      case IER:
        if (dlab) this.dlm = v;
        else {
          const enablingThri = (v & IER_THRI) !== 0 && (this.ier & IER_THRI) === 0;
          this.ier = v & 0x0f;
          // Enabling THRI with an empty THR raises the interrupt at once (16550A behaviour Linux probes).
          if (enablingThri) this.thrInterruptPending = true;
          this.updateIrq();
        }
        break;
      case IIR_FCR:
        this.fifoEnabled = (v & 1) !== 0;
        break;
      case LCR:
        this.lcr = v;
        break;
      case MCR:
        this.mcr = v & 0x1f;
        break;
      case SCR:
        this.scr = v;
        break;
      default:
        break;
    }
  }

  private updateIrq(): void {
    const level =
      ((this.ier & IER_RDI) !== 0 && this.input.length > 0) || ((this.ier & IER_THRI) !== 0 && this.thrInterruptPending);
    if (level !== this.irqLevel) {
      this.irqLevel = level;
      this.irq(level);
    }
  }
}
