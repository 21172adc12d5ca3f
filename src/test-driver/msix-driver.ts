// The driver's side of MSI-X (PCI 3.0 §6.8.2): program table entries with a
// message per vector, mask and unmask them, enable the capability, read the
// Pending Bit Array. Each programmed message is registered with the
// InterruptRecorder so that MSIs map back to vectors.
import { MSIX_VECTOR_CONTROL_MASK, MsixCap, MsixControl, MsixTableEntry } from 'virtio-spec-types';
import type { InterruptRecorder } from './interrupt-recorder';
import type { PciGuestPort, PciLocation } from './pci-guest-port';
import type { MsixLocation } from './virtio-pci-probe';

/** x86 MSI address window (local APIC at 0xFEE00000); destination id in bits 19:12. */
export const MSI_ADDRESS_BASE = 0xfee0_0000;
/** Message data of vector v: a distinct value per vector. */
export const MSI_DATA_BASE = 0x4000;

export class MsixDriver {
  constructor(
    private readonly port: PciGuestPort,
    private readonly loc: PciLocation,
    readonly location: MsixLocation,
    private readonly recorder: InterruptRecorder,
  ) {}

  get vectors(): number {
    return this.location.vectors;
  }

  /** Programs vector `v` with a distinct message (unmasked unless `masked`). */
  program(v: number, masked = false): void {
    this.checkVector(v);
    const address = MSI_ADDRESS_BASE + ((v & 0xff) << 12);
    const data = MSI_DATA_BASE + v;
    const e = this.location.table + v * MsixTableEntry.SIZE;
    this.recorder.expect(v, address, data);
    // §6.8.3.5: mask while the entry changes.
    this.port.mmioWrite(e + MsixTableEntry.VECTOR_CONTROL, 4, MSIX_VECTOR_CONTROL_MASK);
    this.port.mmioWrite(e + MsixTableEntry.MESSAGE_ADDRESS_LO, 4, address);
    this.port.mmioWrite(e + MsixTableEntry.MESSAGE_ADDRESS_HI, 4, 0);
    this.port.mmioWrite(e + MsixTableEntry.MESSAGE_DATA, 4, data);
    if (!masked) this.port.mmioWrite(e + MsixTableEntry.VECTOR_CONTROL, 4, 0);
  }

  /** Sets or clears vector `v`'s mask bit. */
  mask(v: number, masked: boolean): void {
    this.checkVector(v);
    this.port.mmioWrite(this.location.table + v * MsixTableEntry.SIZE + MsixTableEntry.VECTOR_CONTROL, 4, masked ? MSIX_VECTOR_CONTROL_MASK : 0);
  }

  isMasked(v: number): boolean {
    this.checkVector(v);
    return (this.port.mmioRead(this.location.table + v * MsixTableEntry.SIZE + MsixTableEntry.VECTOR_CONTROL, 4) & MSIX_VECTOR_CONTROL_MASK) !== 0;
  }

  /** Vector `v`'s pending bit, read from the PBA (QWORD-organised; read as DWORDs). */
  pending(v: number): boolean {
    this.checkVector(v);
    const dword = this.port.mmioRead(this.location.pba + 4 * (v >>> 5), 4);
    return ((dword >>> (v & 31)) & 1) !== 0;
  }

  get control(): number {
    return this.port.configRead(this.loc, this.location.capOffset + MsixCap.MESSAGE_CONTROL, 2);
  }

  get enabled(): boolean {
    return (this.control & MsixControl.ENABLE) !== 0;
  }

  /** MSI-X Enable, Function Mask left as it is. */
  enable(on = true): void {
    const c = this.control & (MsixControl.ENABLE | MsixControl.FUNCTION_MASK);
    this.writeControl(on ? c | MsixControl.ENABLE : c & ~MsixControl.ENABLE);
  }

  /** The Function Mask bit: masks every vector at once without touching the table. */
  functionMask(on: boolean): void {
    const c = this.control & (MsixControl.ENABLE | MsixControl.FUNCTION_MASK);
    this.writeControl(on ? c | MsixControl.FUNCTION_MASK : c & ~MsixControl.FUNCTION_MASK);
  }

  private writeControl(value: number): void {
    this.port.configWrite(this.loc, this.location.capOffset + MsixCap.MESSAGE_CONTROL, 2, value);
  }

  private checkVector(v: number): void {
    if (!Number.isInteger(v) || v < 0 || v >= this.location.vectors) throw new RangeError(`MSI-X vector ${v} is not 0..${this.location.vectors - 1}`);
  }
}
