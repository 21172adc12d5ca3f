// §4.1.5.2 / §4.1.5.3 / §4.1.4.5: where a virtio-pci function's used-buffer
// and configuration-change notifications go. With MSI-X enabled, to the
// mapped vector (nothing for NO_VECTOR); otherwise ISR bits and INTx, whose
// level is "ISR non-zero" while MSI-X is disabled (PCI 3.0 §6.8.2: a
// function with MSI-X enabled must not use INTx).
import { VIRTIO_MSI_NO_VECTOR, VirtioPciIsr } from 'virtio-spec-types';
import type { MsixCapability } from '../../pci/msix';
import type { PciFunction } from '../../pci/pci-function';
import { IsrStatus } from './isr';

export class VirtioPciInterrupts {
  readonly isr: IsrStatus;

  constructor(
    private readonly fn: PciFunction,
    private readonly msix: MsixCapability,
  ) {
    this.isr = new IsrStatus(() => this.updateIntx());
    msix.addListener({ controlChanged: () => this.updateIntx() });
  }

  /** Used buffer notification through the queue's vector. */
  queue(vector: number): void {
    if (this.msix.enabled) {
      if (vector !== VIRTIO_MSI_NO_VECTOR) this.msix.trigger(vector);
    } else {
      this.isr.raise(VirtioPciIsr.QUEUE);
    }
  }

  /** Configuration change notification; the ISR config bit is set either way (§4.1.4.5.1). */
  config(vector: number): void {
    this.isr.raise(VirtioPciIsr.CONFIG);
    if (this.msix.enabled && vector !== VIRTIO_MSI_NO_VECTOR) this.msix.trigger(vector);
  }

  /** The driver's ISR read: returns and clears the bits, deasserting INTx. */
  readIsr(): number {
    return this.isr.readAndClear();
  }

  reset(): void {
    this.isr.clear();
  }

  private updateIntx(): void {
    this.fn.setIntx(this.isr.value !== 0 && !this.msix.enabled);
  }
}
