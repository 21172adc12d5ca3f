// The VM's GSI routing table. KVM_SET_GSI_ROUTING replaces the whole table,
// so the default irqchip routes (GSI 0-15 on the PICs and the IOAPIC, 16-23
// on the IOAPIC: what KVM sets up by itself) are always kept, and MSI routes
// for virtio queue vectors are added from GSI 24 upwards.
import { IrqChip, type GsiRoute } from '../kvm/vm';
import type { DeviceVm } from './device-vm';

const FIRST_MSI_GSI = 24;
const IOAPIC_PINS = 24;

export class InterruptRouting {
  private readonly msi = new Map<number, { addressLo: number; addressHi: number; data: number }>();
  private next = FIRST_MSI_GSI;
  private readonly free: number[] = [];

  constructor(private readonly vm: DeviceVm) {}

  /** A GSI for an MSI route (give it back with release). */
  allocate(): number {
    return this.free.pop() ?? this.next++;
  }

  release(gsi: number): void {
    if (this.msi.delete(gsi)) this.commit();
    this.free.push(gsi);
  }

  /** Points `gsi` at an MSI message (address/data from the MSI-X table). */
  setMsi(gsi: number, address: number, data: number): void {
    const addressLo = address % 0x1_0000_0000;
    const addressHi = Math.floor(address / 0x1_0000_0000);
    const cur = this.msi.get(gsi);
    if (cur && cur.addressLo === addressLo && cur.addressHi === addressHi && cur.data === data) return;
    this.msi.set(gsi, { addressLo, addressHi, data });
    this.commit();
  }

  private commit(): void {
    const routes: GsiRoute[] = [];
    for (let gsi = 0; gsi < IOAPIC_PINS; gsi++) {
      if (gsi < 16) routes.push({ gsi, type: 'irqchip', irqchip: gsi < 8 ? IrqChip.PicMaster : IrqChip.PicSlave, pin: gsi % 8 });
      routes.push({ gsi, type: 'irqchip', irqchip: IrqChip.Ioapic, pin: gsi });
    }
    for (const [gsi, m] of this.msi) routes.push({ gsi, type: 'msi', addressLo: m.addressLo, addressHi: m.addressHi, data: m.data });
    this.vm.setGsiRouting(routes);
  }
}
