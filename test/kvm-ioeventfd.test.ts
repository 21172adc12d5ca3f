// ioeventfd: a guest write to a registered port or MMIO address signals the
// eventfd inside the kernel instead of exiting; with datamatch only the
// matching value does, and other values still exit.
import * as assert from 'uvu/assert';
import { test } from 'uvu';
import { EventFd } from '../src/host/eventfd';
import { ExitReason } from '../src/kvm';
import { kvmTest, realModeGuest } from './support/kvm-guest';

// prettier-ignore
const GUEST = [
  0xba, 0x00, 0x05,                                     // mov dx, 0x500
  0xb8, 0x01, 0x00,                                     // mov ax, 1
  0xef,                                                 // out dx, ax        -> pio ioeventfd
  0xbb, 0x00, 0x10,                                     // mov bx, 0x1000
  0x8e, 0xdb,                                           // mov ds, bx
  0x66, 0xc7, 0x06, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00, // mov dword [0], 7  -> mmio ioeventfd (datamatch 7)
  0x66, 0xc7, 0x06, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, // mov dword [0], 8  -> no match: exits
  0xe6, 0x99,                                           // out 0x99, al
  0xf4,                                                 // hlt
];

kvmTest('guest writes to ioeventfd addresses signal the eventfd instead of exiting', () => {
  const g = realModeGuest(GUEST);
  const pio = EventFd.create({ nonblock: true });
  const mmio = EventFd.create({ nonblock: true });
  const pioSpec = { eventfd: pio.fd, space: 'pio', addr: 0x500, len: 2 } as const;
  const mmioSpec = { eventfd: mmio.fd, space: 'mmio', addr: 0x10000, len: 4, datamatch: 7 } as const;
  try {
    g.vm.assignIoeventfd(pioSpec);
    g.vm.assignIoeventfd(mmioSpec);

    assert.is(g.run(), ExitReason.Mmio, 'first exit is the non-matching MMIO write');
    assert.is(g.vcpu.mmioAddress, 0x10000);
    assert.is(g.vcpu.mmioValue, 8);
    assert.is(pio.read(), 1, 'port write signalled');
    assert.is(mmio.read(), 1, 'matching MMIO write signalled');

    assert.is(g.run(), ExitReason.Io);
    assert.is(g.vcpu.ioPort, 0x99);
    assert.is(g.run(), ExitReason.Hlt);
    assert.is(pio.read(), 0, 'nothing more');

    g.vm.deassignIoeventfd(pioSpec);
    g.vm.deassignIoeventfd(mmioSpec);
    assert.throws(() => g.vm.deassignIoeventfd(pioSpec), (e: NodeJS.ErrnoException) => e.code === 'ENOENT');
  } finally {
    pio.close();
    mmio.close();
    g.close();
  }
});

test.run();
