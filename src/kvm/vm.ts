// A VM: guest memory slots, the in-kernel irqchip and PIT, GSI routing,
// irqfd (eventfd -> interrupt), ioeventfd (guest write -> eventfd, no exit),
// MSI and IRQ-line injection, and vCPU creation.
import { kvmNative, type StructBytes } from '../native/kvm';
import { sys } from '../native/sys';
import { Vcpu } from './vcpu';

export const enum MemoryFlags {
  LogDirtyPages = 1,
  ReadOnly = 2,
}

export const enum IrqChip {
  PicMaster = 0,
  PicSlave = 1,
  Ioapic = 2,
}

export interface MemoryRegion {
  slot: number;
  guestPhysAddr: number;
  /** Page-aligned memory from GuestRam (a subarray selects part of it). */
  memory: StructBytes;
  flags?: number;
}

export type GsiRoute =
  | { gsi: number; type: 'msi'; addressLo: number; addressHi?: number; data: number }
  | { gsi: number; type: 'irqchip'; irqchip: IrqChip; pin: number };

export interface IoEventSpec {
  eventfd: number;
  space: 'pio' | 'mmio';
  addr: number;
  /** Access size that matches: 1, 2, 4 or 8 (MMIO also 0: any size). */
  len: number;
  /** Only a write of this value signals; other writes exit as usual. */
  datamatch?: number | bigint;
}

const C = kvmNative.constants;
const RT = kvmNative.layout.routing;

export class Vm {
  private closed = false;

  constructor(
    readonly fd: number,
    private readonly vcpuMmapSize: number,
  ) {}

  /** Per-VM answer to KVM_CHECK_EXTENSION. */
  checkExtension(cap: number): number {
    return kvmNative.checkExtension(this.fd, cap);
  }

  setUserMemoryRegion(r: MemoryRegion): void {
    kvmNative.setUserMemoryRegion(this.fd, r.slot, r.flags ?? 0, r.guestPhysAddr, r.memory);
  }

  deleteUserMemoryRegion(slot: number): void {
    kvmNative.setUserMemoryRegion(this.fd, slot, 0, 0, null);
  }

  /** In-kernel PIC, IOAPIC and local APICs (before any vCPU is created). */
  createIrqchip(): void {
    kvmNative.createIrqchip(this.fd);
  }

  createPit2(speakerDummy = true): void {
    kvmNative.createPit2(this.fd, speakerDummy ? C.KVM_PIT_SPEAKER_DUMMY : 0);
  }

  setTssAddr(addr: number): void {
    kvmNative.setTssAddr(this.fd, addr);
  }

  setIdentityMapAddr(addr: number): void {
    kvmNative.setIdentityMapAddr(this.fd, addr);
  }

  /** Replaces the whole GSI routing table (the irqchip's default routes included). */
  setGsiRouting(routes: readonly GsiRoute[]): void {
    const buf = new Uint8Array(RT.entries + routes.length * RT.entry_size);
    const dv = new DataView(buf.buffer);
    dv.setUint32(RT.nr, routes.length, true);
    routes.forEach((r, i) => {
      const o = RT.entries + i * RT.entry_size;
      dv.setUint32(o + RT.entry_gsi, r.gsi, true);
      if (r.type === 'msi') {
        dv.setUint32(o + RT.entry_type, C.KVM_IRQ_ROUTING_MSI, true);
        dv.setUint32(o + RT.msi_address_lo, r.addressLo >>> 0, true);
        dv.setUint32(o + RT.msi_address_hi, (r.addressHi ?? 0) >>> 0, true);
        dv.setUint32(o + RT.msi_data, r.data >>> 0, true);
      } else {
        dv.setUint32(o + RT.entry_type, C.KVM_IRQ_ROUTING_IRQCHIP, true);
        dv.setUint32(o + RT.irqchip_irqchip, r.irqchip, true);
        dv.setUint32(o + RT.irqchip_pin, r.pin, true);
      }
    });
    kvmNative.setGsiRouting(this.fd, buf);
  }

  /**
   * A write to `eventfd` raises `gsi`. With `resampleFd` (level-triggered
   * irqchip GSIs) KVM lowers the line on EOI and signals resampleFd.
   */
  assignIrqfd(eventfd: number, gsi: number, resampleFd?: number): void {
    if (resampleFd === undefined) kvmNative.irqfd(this.fd, eventfd, gsi, 0, 0);
    else kvmNative.irqfd(this.fd, eventfd, gsi, C.KVM_IRQFD_FLAG_RESAMPLE, resampleFd);
  }

  deassignIrqfd(eventfd: number, gsi: number): void {
    kvmNative.irqfd(this.fd, eventfd, gsi, C.KVM_IRQFD_FLAG_DEASSIGN, 0);
  }

  assignIoeventfd(s: IoEventSpec): void {
    this.ioeventfd(s, 0);
  }

  /** Must name the same address, length, space and datamatch as the assignment. */
  deassignIoeventfd(s: IoEventSpec): void {
    this.ioeventfd(s, C.KVM_IOEVENTFD_FLAG_DEASSIGN);
  }

  private ioeventfd(s: IoEventSpec, extra: number): void {
    let flags = extra;
    if (s.space === 'pio') flags |= C.KVM_IOEVENTFD_FLAG_PIO;
    if (s.datamatch !== undefined) flags |= C.KVM_IOEVENTFD_FLAG_DATAMATCH;
    kvmNative.ioeventfd(this.fd, s.addr, s.len, s.eventfd, flags, s.datamatch);
  }

  /** Injects one MSI. Returns false if the guest blocked it (e.g. the APIC is disabled). */
  signalMsi(addressLo: number, addressHi: number, data: number): boolean {
    return kvmNative.signalMsi(this.fd, addressLo, addressHi, data) > 0;
  }

  irqLine(irq: number, level: boolean): void {
    kvmNative.irqLine(this.fd, irq, level ? 1 : 0);
  }

  /** Port writes in [port, port + size) are logged in the coalesced ring (CoalescedWrites) instead of exiting. */
  registerCoalescedPio(port: number, size: number): void {
    kvmNative.registerCoalescedIo(this.fd, port, size, true);
  }

  /** The zone's port writes exit again (writes already logged stay in the ring). */
  unregisterCoalescedPio(port: number, size: number): void {
    kvmNative.registerCoalescedIo(this.fd, port, size, true, true);
  }

  createVcpu(id: number): Vcpu {
    return Vcpu.create(this.fd, id, this.vcpuMmapSize);
  }

  /** Closes the VM fd. Close its vCPUs first; the kernel frees the VM when the last fd goes. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    sys.close(this.fd);
  }
}
