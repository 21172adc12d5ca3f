// Coalesced port writes (src/vmm/coalesced-writes.ts): writes to a
// registered zone do not exit, and drain() hands them over in the order the
// guest made them, with their port, size and data, before the next exit is
// handled; a zone switched off exits again. The UART says when its transmit
// register is only output (the THR-empty interrupt off, no loopback, no
// divisor latch), which is when the VMM lets KVM log it.
import * as assert from 'uvu/assert';
import { test } from 'uvu';
import { ExitReason, IoDirection } from '../src/kvm';
import { CoalescedWrites } from '../src/vmm/coalesced-writes';
import { COM1_BASE, Serial8250 } from '../src/vmm/devices/serial-8250';
import { kvmTest, realModeGuest } from './support/kvm-guest';

// prettier-ignore
const GUEST = [
  0xba, 0xf8, 0x0c,                   // mov dx, 0xcf8
  0x66, 0xb8, 0x00, 0x00, 0x00, 0x80, // mov eax, 0x80000000
  0x66, 0xef,                         // out dx, eax        (logged)
  0xba, 0xf8, 0x03,                   // mov dx, 0x3f8
  0xb0, 0x41,                         // mov al, 'A'
  0xee,                               // out dx, al         (logged)
  0xba, 0xf8, 0x0c,                   // mov dx, 0xcf8
  0x66, 0xb8, 0x08, 0x00, 0x00, 0x80, // mov eax, 0x80000008
  0x66, 0xef,                         // out dx, eax        (logged)
  0xba, 0xfc, 0x0c,                   // mov dx, 0xcfc
  0x66, 0xed,                         // in eax, dx         (exits)
  0xba, 0xf8, 0x03,                   // mov dx, 0x3f8
  0xb0, 0x42,                         // mov al, 'B'
  0xee,                               // out dx, al         (exits: zone off by then)
  0xf4,                               // hlt
];

kvmTest('logged port writes come back in order with port, size and data, and a zone switched off exits again', () => {
  const g = realModeGuest(GUEST);
  try {
    const ring = CoalescedWrites.register(g.vm, g.vcpu, [[0xcf8, 4], [COM1_BASE, 1]]);
    if (!ring) {
      console.log('# KVM here cannot coalesce port writes (no KVM_CAP_COALESCED_PIO): nothing to check');
      return;
    }
    const seen: Array<[number, number, number]> = [];
    const value = (data: Uint8Array): number => data.reduceRight((v, b) => v * 256 + b, 0);
    const drain = (): void => ring.drain((port, data) => void seen.push([port, data.length, value(data)]));
    // The first exit is the read of 0xcfc: the three writes before it were logged, not exits.
    assert.is(g.run(), ExitReason.Io);
    assert.is(g.vcpu.ioDirection, IoDirection.In);
    assert.is(g.vcpu.ioPort, 0xcfc);
    drain();
    assert.equal(seen, [
      [0xcf8, 4, 0x80000000],
      [COM1_BASE, 1, 0x41],
      [0xcf8, 4, 0x80000008],
    ]);
    drain();
    assert.is(seen.length, 3, 'a drained write is not handed over twice');
    ring.zone(COM1_BASE, 1, false);
    assert.is(g.run(), ExitReason.Io);
    assert.is(g.vcpu.ioDirection, IoDirection.Out);
    assert.is(g.vcpu.ioPort, COM1_BASE);
    assert.is(g.vcpu.ioValue, 0x42);
  } finally {
    g.close();
  }
});

test("the UART's transmit register is only output while THRI, loopback and DLAB are off, and it says when that changes", () => {
  const changes: boolean[] = [];
  const out: number[] = [];
  const u = new Serial8250(COM1_BASE, (b) => out.push(b), () => {}, (on) => changes.push(on));
  const w = (reg: number, v: number): void => u.write(COM1_BASE + reg, Uint8Array.of(v));
  assert.ok(u.txOnlyOutput);
  w(1, 0x02); // IER: THR-empty interrupt on
  assert.not.ok(u.txOnlyOutput);
  w(1, 0x01); // receive interrupt only
  assert.ok(u.txOnlyOutput);
  w(4, 0x10); // MCR: loopback
  w(4, 0x08);
  w(3, 0x83); // LCR: DLAB
  w(3, 0x03);
  w(0, 0x41);
  assert.equal(changes, [false, true, false, true, false, true]);
  assert.equal(out, [0x41]);
});

test.run();
