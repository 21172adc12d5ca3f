// §4.1.4.9: the VIRTIO_PCI_CAP_PCI_CFG capability, a window from
// configuration space into the BARs for drivers that cannot map them yet
// (firmware, early boot). The driver writes cap.bar / cap.offset /
// cap.length, then reading pci_cfg_data performs a BAR read of cap.length
// bytes and writing it performs a BAR write.
import { VirtioPciCap, VirtioPciCapType, VirtioPciCfgCap } from 'virtio-spec-types';
import type { PciFunction } from '../../pci/pci-function';
import type { BarRegion } from './bar-layout';
import { addVirtioCapability } from './capabilities';

export interface PciCfgTarget extends BarRegion {
  readonly bar: number;
}

export class PciCfgWindow {
  readonly capOffset: number;
  private readonly scratch = new Uint8Array(4);

  /** `targets`: the structures of the other virtio capabilities, the only ranges the window may reach. */
  constructor(
    private readonly fn: PciFunction,
    private readonly targets: readonly PciCfgTarget[],
  ) {
    this.capOffset = addVirtioCapability(
      fn,
      { cfgType: VirtioPciCapType.PCI_CFG, bar: 0, offset: 0, length: 0, extraLength: VirtioPciCfgCap.SIZE - VirtioPciCap.SIZE },
      {
        beforeRead: (offset, size) => {
          if (this.touchesData(offset, size)) this.barRead();
        },
        afterWrite: (offset, size) => {
          if (this.touchesData(offset, size)) this.barWrite();
        },
      },
    );
    const c = fn.config;
    c.setWritable(this.capOffset + VirtioPciCap.BAR, 1, 0xff);
    c.setWritable(this.capOffset + VirtioPciCap.OFFSET, 4, 0xffffffff);
    c.setWritable(this.capOffset + VirtioPciCap.LENGTH, 4, 0xffffffff);
    c.setWritable(this.capOffset + VirtioPciCfgCap.PCI_CFG_DATA, 4, 0xffffffff);
  }

  private touchesData(offset: number, size: number): boolean {
    return offset < VirtioPciCfgCap.PCI_CFG_DATA + 4 && offset + size > VirtioPciCfgCap.PCI_CFG_DATA;
  }

  /**
   * The access the capability describes, if the driver set up a legal one:
   * length 1, 2 or 4, offset aligned to it (§4.1.4.9.2), all inside one of
   * the other capabilities' structures.
   */
  private access(): { bar: number; offset: number; data: Uint8Array } | undefined {
    const c = this.fn.config;
    const bar = c.get8(this.capOffset + VirtioPciCap.BAR);
    const offset = c.get32(this.capOffset + VirtioPciCap.OFFSET);
    const length = c.get32(this.capOffset + VirtioPciCap.LENGTH);
    if ((length !== 1 && length !== 2 && length !== 4) || offset % length !== 0) return undefined;
    const inside = this.targets.some((t) => t.bar === bar && offset >= t.offset && offset + length <= t.offset + t.length);
    return inside ? { bar, offset, data: this.scratch.subarray(0, length) } : undefined;
  }

  private barRead(): void {
    const dataAt = this.capOffset + VirtioPciCfgCap.PCI_CFG_DATA;
    const a = this.access();
    if (!a) {
      this.fn.config.set32(dataAt, 0);
      return;
    }
    this.fn.barRead(a.bar, a.offset, a.data);
    // §4.1.4.9.1: the first cap.length bytes of pci_cfg_data take the result.
    for (let i = 0; i < a.data.length; i++) this.fn.config.set8(dataAt + i, a.data[i] ?? 0);
  }

  private barWrite(): void {
    const a = this.access();
    if (!a) return;
    const dataAt = this.capOffset + VirtioPciCfgCap.PCI_CFG_DATA;
    for (let i = 0; i < a.data.length; i++) a.data[i] = this.fn.config.get8(dataAt + i);
    this.fn.barWrite(a.bar, a.offset, a.data);
  }
}
