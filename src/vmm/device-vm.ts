// What the VMM's devices need from the hypervisor, and nothing more: interrupt
// injection and routing, and the eventfds that carry queue notifications and
// interrupts past this thread (ioeventfd, irqfd). KVM's Vm is one; the hosted
// accelerator (hosted/hosted-vm.ts) is the other.
import type { Vm } from '../kvm/vm';

export type DeviceVm = Pick<Vm, 'signalMsi' | 'irqLine' | 'setGsiRouting' | 'assignIoeventfd' | 'deassignIoeventfd' | 'assignIrqfd' | 'deassignIrqfd'>;
