// The InterruptSink the test guest's "interrupt controller" is: MSI messages
// are mapped back to the vector whose table entry the driver programmed
// with that address and data (the driver registers each one), INTx level
// changes are recorded. Counting allocates nothing; the event log (tests)
// can be switched off for benchmarks.
import type { InterruptSink } from '../pci/interrupt-sink';

export interface MsiEvent {
  /** The vector whose programmed message this is; -1 for a message no vector was programmed with. */
  readonly vector: number;
  readonly address: number;
  readonly data: number;
}

export class InterruptRecorder implements InterruptSink {
  /** MSI messages per vector. */
  readonly msiCounts = new Uint32Array(2048);
  /** Messages matching no programmed vector (a device writing where it should not). */
  unknownMsi = 0;
  totalMsi = 0;
  /** Every MSI in order (only while `logging`). */
  readonly log: MsiEvent[] = [];
  logging = true;
  /** Current INTx pin level and every change of it. */
  intxLevel = false;
  readonly intxChanges: boolean[] = [];
  /** Rising edges of INTx. */
  intxAsserts = 0;
  private readonly byData = new Map<number, { vector: number; address: number }>();

  /** The driver programmed `vector` to send `data` to `address`. */
  expect(vector: number, address: number, data: number): void {
    this.byData.set(data >>> 0, { vector, address });
  }

  msi(address: number, data: number): void {
    const m = this.byData.get(data >>> 0);
    const vector = m !== undefined && m.address === address ? m.vector : -1;
    this.totalMsi++;
    if (vector >= 0) this.msiCounts[vector]++;
    else this.unknownMsi++;
    if (this.logging) this.log.push({ vector, address, data });
  }

  intx(level: boolean): void {
    if (level && !this.intxLevel) this.intxAsserts++;
    this.intxLevel = level;
    if (this.logging) this.intxChanges.push(level);
  }

  count(vector: number): number {
    return this.msiCounts[vector] ?? 0;
  }

  /** Vectors of the logged MSIs since the last clear. */
  vectors(): number[] {
    return this.log.map((e) => e.vector);
  }

  clear(): void {
    this.msiCounts.fill(0);
    this.unknownMsi = 0;
    this.totalMsi = 0;
    this.log.length = 0;
    this.intxChanges.length = 0;
    this.intxAsserts = 0;
  }
}
