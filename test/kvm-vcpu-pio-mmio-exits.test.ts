// A real-mode guest doing port I/O and MMIO: every access reaches
// userspace as a decoded exit with the right port/address, size and data,
// and IN/MMIO-read data written back reaches the guest.
import * as assert from 'uvu/assert';
import { test } from 'uvu';
import { ExitReason, IoDirection } from '../src/kvm';
import { kvmTest, realModeGuest } from './support/kvm-guest';

// prettier-ignore
const GUEST = [
  0xba, 0xf8, 0x03,                   // mov dx, 0x3f8
  0xb0, 0x41,                         // mov al, 0x41
  0xee,                               // out dx, al
  0xb8, 0xef, 0xbe,                   // mov ax, 0xbeef
  0xe7, 0x80,                         // out 0x80, ax
  0x66, 0xb8, 0x78, 0x56, 0x34, 0x12, // mov eax, 0x12345678
  0x66, 0xef,                         // out dx, eax
  0xe4, 0x60,                         // in al, 0x60
  0xe6, 0x61,                         // out 0x61, al
  0xb8, 0x00, 0x10,                   // mov ax, 0x1000
  0x8e, 0xd8,                         // mov ds, ax        (ds:0 = 0x10000, past RAM)
  0xc7, 0x06, 0x10, 0x00, 0xfe, 0xca, // mov word [0x10], 0xcafe
  0x66, 0x8b, 0x1e, 0x20, 0x00,       // mov ebx, [0x20]
  0x66, 0x89, 0xd8,                   // mov eax, ebx
  0x66, 0xe7, 0x62,                   // out 0x62, eax
  0xf4,                               // hlt
];

kvmTest('port I/O and MMIO exits carry port/address, size, direction and data', () => {
  const g = realModeGuest(GUEST);
  const v = g.vcpu;
  try {
    const out = (port: number, size: number, value: number): void => {
      assert.is(g.run(), ExitReason.Io);
      assert.is(v.ioDirection, IoDirection.Out);
      assert.is(v.ioPort, port);
      assert.is(v.ioSize, size);
      assert.is(v.ioCount, 1);
      assert.is(v.ioValue, value);
      assert.is(v.runBytes[v.ioDataOffset], value & 0xff, 'data also readable at ioDataOffset');
    };
    out(0x3f8, 1, 0x41);
    out(0x80, 2, 0xbeef);
    out(0x3f8, 4, 0x12345678);

    assert.is(g.run(), ExitReason.Io);
    assert.is(v.ioDirection, IoDirection.In);
    assert.is(v.ioPort, 0x60);
    assert.is(v.ioSize, 1);
    v.ioValue = 0x5a;
    out(0x61, 1, 0x5a);

    assert.is(g.run(), ExitReason.Mmio);
    assert.is(v.mmioAddress, 0x10010);
    assert.ok(v.mmioIsWrite);
    assert.is(v.mmioLen, 2);
    assert.is(v.mmioValue, 0xcafe);
    assert.equal([...v.mmioData.subarray(0, 2)], [0xfe, 0xca]);

    assert.is(g.run(), ExitReason.Mmio);
    assert.is(v.mmioAddress, 0x10020);
    assert.not.ok(v.mmioIsWrite);
    assert.is(v.mmioLen, 4);
    v.mmioValue = 0xdeadbeef;
    out(0x62, 4, 0xdeadbeef);

    assert.is(g.run(), ExitReason.Hlt, 'without an in-kernel irqchip hlt exits');
    assert.is(v.getRegs().rbx, 0xdeadbeefn);
  } finally {
    g.close();
  }
});

// out 0x80, al ; loop ; hlt  -- cx iterations
const LOOP = [0xe6, 0x80, 0xe2, 0xfc, 0xf4];

kvmTest('a loop of N port writes gives N exits (and how fast)', () => {
  const g = realModeGuest(LOOP);
  try {
    const n = 2000;
    const r = g.vcpu.getRegs();
    r.rcx = BigInt(n);
    g.vcpu.setRegs(r);
    let exits = 0;
    const t0 = process.hrtime.bigint();
    let reason: ExitReason;
    while ((reason = g.run()) === ExitReason.Io) exits++;
    const ns = Number(process.hrtime.bigint() - t0);
    assert.is(reason, ExitReason.Hlt);
    assert.is(exits, n);
    console.log(`# ${n} real-mode out exits in ${(ns / 1e6).toFixed(1)} ms (${(ns / n / 1000).toFixed(1)} us per exit)`);
  } finally {
    g.close();
  }
});

test.run();
