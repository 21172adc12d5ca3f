// The last few register accesses one vCPU made, for the message of a stop
// that leaves nothing else behind: after a triple fault SVM reinitialises
// the VMCB (AMD APM vol. 2 §15.9, shutdown intercept), so the registers
// KVM returns are not the guest's. Fixed storage, no allocation per exit.
import { ExitKind } from './exit-mailbox';

const KEEP = 8;

const KIND_NAME: Record<number, string> = {
  [ExitKind.PioRead]: 'in',
  [ExitKind.PioWrite]: 'out',
  [ExitKind.MmioRead]: 'mmio read',
  [ExitKind.MmioWrite]: 'mmio write',
};

export class RecentExits {
  private readonly kind = new Uint8Array(KEEP);
  private readonly size = new Uint8Array(KEEP);
  private readonly address = new Float64Array(KEEP);
  private count = 0;

  note(kind: ExitKind, address: number, size: number): void {
    const i = this.count % KEEP;
    this.kind[i] = kind;
    this.address[i] = address;
    this.size[i] = size;
    this.count++;
  }

  /** Oldest first, with how many exits there were in all. */
  describe(): string {
    if (this.count === 0) return 'no port or MMIO exit before it';
    const n = Math.min(this.count, KEEP);
    const items: string[] = [];
    for (let k = this.count - n; k < this.count; k++) {
      const i = k % KEEP;
      items.push(`${KIND_NAME[this.kind[i]!] ?? `kind ${this.kind[i]}`} 0x${this.address[i]!.toString(16)}/${this.size[i]}`);
    }
    return `last ${n} of ${this.count} exits: ${items.join(', ')}`;
  }
}
