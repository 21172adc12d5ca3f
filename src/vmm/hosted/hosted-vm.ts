// The hypervisor side of `xdpvm run -accel hosted`, for hosts without
// /dev/kvm: the vCPU is the PMD test guest's hosted build, a Linux process
// running the same driver code (guest-images/pmd/hosted), whose every port
// and MMIO access arrives as a request over a socket (hosted-vcpu-loop.ts).
// What KVM does in the kernel for the devices is done here: ioeventfds are
// a table the vCPU's relay thread consults (ioevent-table.ts), so a queue
// notification reaches its I/O thread without this thread; interrupts have
// nowhere to go (the hosted driver polls, and its build refuses irq= and
// intx=), so they are counted and dropped.
import type { GsiRoute, IoEventSpec } from '../../kvm/vm';
import type { DeviceVm } from '../device-vm';
import { IoeventTable } from './ioevent-table';

export class HostedVm implements DeviceVm {
  readonly ioevents = new IoeventTable();
  /** Interrupts the devices raised (MSI messages, INTx assertions), which no hosted vCPU can take. */
  interruptsDropped = 0;

  signalMsi(_addressLo: number, _addressHi: number, _data: number): boolean {
    this.interruptsDropped++;
    return false;
  }

  irqLine(_irq: number, level: boolean): void {
    if (level) this.interruptsDropped++;
  }

  setGsiRouting(_routes: readonly GsiRoute[]): void {}

  assignIrqfd(_eventfd: number, _gsi: number, _resampleFd?: number): void {}

  deassignIrqfd(_eventfd: number, _gsi: number): void {}

  assignIoeventfd(s: IoEventSpec): void {
    // The devices use plain MMIO notifications (§4.1.4.4 notify capability); a port or datamatch one would be ours to add.
    if (s.space !== 'mmio' || s.datamatch !== undefined) throw new Error(`hosted accelerator: only MMIO ioeventfds without datamatch (got ${s.space} at 0x${s.addr.toString(16)})`);
    this.ioevents.add(s.addr, s.len, s.eventfd);
  }

  deassignIoeventfd(s: IoEventSpec): void {
    if (!this.ioevents.remove(s.addr, s.len, s.eventfd)) throw new Error(`hosted accelerator: no ioeventfd at 0x${s.addr.toString(16)} to remove`);
  }
}
