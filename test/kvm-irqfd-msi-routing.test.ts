// irqfd + GSI routing: an eventfd assigned as irqfd to a GSI routed as MSI
// makes the vector pending in the local APIC (IRR, read with KVM_GET_LAPIC),
// and a real-mode guest with interrupts enabled then takes it through its
// IVT (the handler reports the vector by port I/O; ISR shows it in service).
// KVM_SIGNAL_MSI and KVM_IRQ_LINE are exercised on the same VM.
// A PVM KVM delivers the interrupt the same way but keeps no in-service state
// in the APIC (ISR stays clear without an EOI), so there a pending vector of
// lower priority is taken right after the handler's iret: checked as such.
import * as assert from 'uvu/assert';
import { test } from 'uvu';
import { EventFd } from '../src/host/eventfd';
import {
  ExitReason, IrqChip, LapicReg, lapicIrr, lapicIsr, readLapicReg, SVR_APIC_ENABLED, writeLapicReg, type Vcpu,
} from '../src/kvm';
import { CODE_GPA, KVM_HOST, kvmTest, realModeGuest } from './support/kvm-guest';

// prettier-ignore
const GUEST = [
  0xfb,             // 0x1000: sti
  0xe6, 0x10,       //         out 0x10, al     (tell the host we are ready)
  0xf4,             // 0x1003: hlt
  0xeb, 0xfd,       //         jmp 0x1003
  ...new Array<number>(0x100 - 6).fill(0x90),
  0xb0, 0x40,       // 0x1100: mov al, 0x40     (the vector 0x40 handler)
  0xe6, 0x90,       //         out 0x90, al
  0xcf,             //         iret
  ...new Array<number>(0x10 - 5).fill(0x90),
  0xb0, 0x30,       // 0x1110: mov al, 0x30     (the MSI_VECTOR handler)
  0xe6, 0x90,       //         out 0x90, al
  0xcf,             //         iret
];
const HANDLER = CODE_GPA + 0x100;
const MSI_HANDLER = CODE_GPA + 0x110;
const VECTOR = 0x40;
const MSI_VECTOR = 0x30; // lower priority class than 0x40: stays pending while 0x40 is in service
const MSI_ADDRESS = 0xfee00000; // destination APIC ID 0, physical mode
const GSI = 24; // above the 24 IOAPIC pins

function waitForIrr(vcpu: Vcpu, vector: number, ms: number): boolean {
  const until = Date.now() + ms;
  for (;;) {
    if (lapicIrr(vcpu.getLapic(), vector)) return true;
    if (Date.now() > until) return false;
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2);
  }
}

kvmTest('an irqfd on an MSI-routed GSI raises the vector in the LAPIC and the guest takes it', () => {
  const g = realModeGuest(GUEST, { irqchip: true });
  const irq = EventFd.create();
  try {
    // IVT entry for the vector: offset, then segment 0.
    const dv = new DataView(g.ram.buffer);
    dv.setUint16(VECTOR * 4, HANDLER, true);
    dv.setUint16(VECTOR * 4 + 2, 0, true);
    dv.setUint16(MSI_VECTOR * 4, MSI_HANDLER, true);
    dv.setUint16(MSI_VECTOR * 4 + 2, 0, true);

    // The APIC accepts fixed interrupts only when software-enabled.
    const lapic = g.vcpu.getLapic();
    writeLapicReg(lapic, LapicReg.Svr, readLapicReg(lapic, LapicReg.Svr) | SVR_APIC_ENABLED | 0xff);
    g.vcpu.setLapic(lapic);

    g.vm.setGsiRouting([
      { gsi: 3, type: 'irqchip', irqchip: IrqChip.PicMaster, pin: 3 },
      { gsi: 4, type: 'irqchip', irqchip: IrqChip.Ioapic, pin: 4 },
      { gsi: GSI, type: 'msi', addressLo: MSI_ADDRESS, addressHi: 0, data: VECTOR },
    ]);
    g.vm.assignIrqfd(irq.fd, GSI);
    // GSI 4 now reaches only the IOAPIC, whose pins start masked: accepted, no effect. (Through
    // the PIC it would be delivered: KVM resets the BSP's LINT0 to ExtINT, unmasked.)
    g.vm.irqLine(4, true);
    g.vm.irqLine(4, false);

    assert.is(g.run(), ExitReason.Io);
    assert.is(g.vcpu.ioPort, 0x10);
    assert.not.ok(lapicIrr(g.vcpu.getLapic(), VECTOR), 'nothing pending yet');

    irq.write(1);
    assert.ok(waitForIrr(g.vcpu, VECTOR, 5000), 'irqfd write made the vector pending (IRR)');
    assert.ok(g.vm.signalMsi(MSI_ADDRESS, 0, MSI_VECTOR), 'KVM_SIGNAL_MSI delivered');
    assert.ok(lapicIrr(g.vcpu.getLapic(), MSI_VECTOR));

    assert.is(g.run(), ExitReason.Io, 'the guest took the interrupt');
    assert.is(g.vcpu.ioPort, 0x90);
    assert.is(g.vcpu.ioValue, VECTOR);
    const after = g.vcpu.getLapic();
    assert.not.ok(lapicIrr(after, VECTOR), 'taken: no longer requested');
    if (KVM_HOST === 'pvm') {
      assert.not.ok(lapicIsr(after, VECTOR), 'PVM keeps no in-service bit');
      assert.is(g.run(), ExitReason.Io, 'so the lower-priority MSI is taken after the iret, without an EOI');
      assert.is(g.vcpu.ioPort, 0x90);
      assert.is(g.vcpu.ioValue, MSI_VECTOR);
      assert.not.ok(lapicIrr(g.vcpu.getLapic(), MSI_VECTOR));
    } else {
      assert.ok(lapicIsr(after, VECTOR), 'in service (the handler sends no EOI)');
      assert.ok(lapicIrr(after, MSI_VECTOR), 'the lower-priority MSI waits behind it');
    }
    const events = g.vcpu.getVcpuEvents();
    assert.is(events.nmi.pending, 0);

    g.vm.deassignIrqfd(irq.fd, GSI);
  } finally {
    irq.close();
    g.close();
  }
});

test.run();
