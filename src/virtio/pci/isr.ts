// §4.1.4.5: the ISR status byte. Bits accumulate until the driver reads the
// byte, which returns and clears them (and so deasserts INTx).
import { VirtioPciIsr } from 'virtio-spec-types';

export class IsrStatus {
  private bits = 0;

  /** `changed` runs whenever the value goes from zero to non-zero or back. */
  constructor(private readonly changed: () => void) {}

  get value(): number {
    return this.bits;
  }

  raise(bits: number): void {
    const before = this.bits;
    this.bits |= bits & (VirtioPciIsr.QUEUE | VirtioPciIsr.CONFIG);
    if (before === 0 && this.bits !== 0) this.changed();
  }

  /** The driver's read: returns the bits and clears them. */
  readAndClear(): number {
    const v = this.bits;
    this.bits = 0;
    if (v !== 0) this.changed();
    return v;
  }

  clear(): void {
    this.readAndClear();
  }
}
