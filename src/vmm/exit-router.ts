// Where a vCPU's port I/O and MMIO exits go: the PCI bus first (config
// mechanism #1 and the BARs it assigned), then the platform devices on the
// port bus (which answers unclaimed ports itself). MMIO nobody claims reads
// as all ones and is ignored; the first such access is reported, later ones
// counted. The VMM's Machine and the PMD test rig route their exits here.
import type { PciBus } from '../pci/pci-bus';
import type { PortIoBus } from './devices/port-io-bus';
import { ExitKind } from './vcpu/exit-mailbox';

export class ExitRouter {
  unclaimedMmio = 0;

  constructor(
    readonly pci: PciBus,
    readonly ports: PortIoBus,
    private readonly warn: (line: string) => void,
  ) {}

  pioRead(port: number, data: Uint8Array): void {
    if (!this.pci.pioRead(port, data)) this.ports.read(port, data);
  }

  pioWrite(port: number, data: Uint8Array): void {
    if (!this.pci.pioWrite(port, data)) this.ports.write(port, data);
  }

  mmioRead(address: number, data: Uint8Array): void {
    if (!this.pci.mmioRead(address, data)) this.unclaimed(address, data, 'read');
  }

  mmioWrite(address: number, data: Uint8Array): void {
    if (!this.pci.mmioWrite(address, data)) this.unclaimed(address, data, 'write');
  }

  /** One exit as the vCPU mailbox delivers it. */
  access(kind: ExitKind, address: number, data: Uint8Array): void {
    switch (kind) {
      case ExitKind.PioRead:
        return this.pioRead(address, data);
      case ExitKind.PioWrite:
        return this.pioWrite(address, data);
      case ExitKind.MmioRead:
        return this.mmioRead(address, data);
      case ExitKind.MmioWrite:
        return this.mmioWrite(address, data);
      default:
        return undefined;
    }
  }

  private unclaimed(address: number, data: Uint8Array, what: 'read' | 'write'): void {
    if (what === 'read') data.fill(0xff);
    if (this.unclaimedMmio++ === 0) this.warn(`xdpvm: guest ${what} at unclaimed address 0x${address.toString(16)} (ignored; further ones counted)`);
  }
}
