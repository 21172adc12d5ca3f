// Where a PCI function's interrupts go. The VMM implements this with
// KVM_SIGNAL_MSI / irqfd routes and KVM_IRQ_LINE (or an irqfd with a
// resample fd) for the function's INTx line; tests record the calls.

export interface InterruptSink {
  /**
   * An MSI/MSI-X message: a DWORD write of `data` to the 64-bit `address`
   * (message address high * 2^32 + low; always below 2^52, see msix.ts).
   */
  msi(address: number, data: number): void;
  /**
   * New level of the function's INTx pin, already gated by the command
   * register's Interrupt Disable bit. Called only when the level changes.
   */
  intx(level: boolean): void;
}

/** Sink of a function not (yet) attached to a bus: interrupts go nowhere. */
export const DISCONNECTED_INTERRUPTS: InterruptSink = {
  msi(): void {},
  intx(): void {},
};
