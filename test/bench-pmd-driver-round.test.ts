// The PMD stand-in of `bench device --threads` (PmdDriverPair.round; named bench-: no KVM needed): what one
// round does to the rings, seen from the device side of real virtqueues. In
// io-fwd a received frame goes back out in the same buffer with its MACs
// swapped and a zeroed header, and its receive slot gets a free transmit
// buffer; without a free transmit buffer the frame is counted as dropped and
// its buffer goes back to the receive ring. txonly sends a burst of frames.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { NetHdr } from 'virtio-spec-types';
import { PmdDriverPair, PMD_BUFFER_SIZE, type PmdDriverMode } from '../src/bench/pmd-driver';
import { DescriptorChain } from '../src/virtio/queue/descriptor-chain';
import { createVirtqueue, type Virtqueue } from '../src/virtio/queue/virtqueue';
import { GuestRam } from '../src/test-driver/guest-ram';
import type { DriverQueue } from '../src/test-driver/driver-queue';

const SIZE = 8;
const HDR = NetHdr.SIZE;
const DST = [0x02, 0, 0, 0, 0, 0xaa];
const SRC = [0x02, 0, 0, 0, 0, 0xbb];

function rig(mode: PmdDriverMode, burst = SIZE): { ram: GuestRam; d: PmdDriverPair; rxDev: Virtqueue; txDev: Virtqueue; kicks: number[] } {
  const ram = new GuestRam(1 << 20);
  const kicks: number[] = [];
  const d = new PmdDriverPair(ram, { mode, size: SIZE, burst, frameSize: 64, eventIdx: false, notify: (i) => kicks.push(i) });
  const features = { eventIdx: false, indirect: false, inOrder: false };
  const device = (q: DriverQueue): Virtqueue =>
    createVirtqueue(ram.memory, 'split', { size: SIZE, descAddr: q.descAddr, driverAddr: q.driverAddr, deviceAddr: q.deviceAddr }, { features });
  d.start();
  return { ram, d, rxDev: device(d.rxq), txDev: device(d.txq), kicks };
}

/** The device receives `n` frames: header (num_buffers 1) and an Ethernet header DST, SRC into the next buffers. */
function receive(ram: GuestRam, rxDev: Virtqueue, n: number): number[] {
  const chain = new DescriptorChain(SIZE);
  const addrs: number[] = [];
  for (let k = 0; k < n; k++) {
    assert.ok(rxDev.pop(chain), `receive buffer ${k}`);
    const at = chain.addr[0]! - ram.base;
    ram.bytes.fill(0xee, at, at + HDR);
    ram.bytes.set([...DST, ...SRC, 0x08, 0x00], at + HDR);
    rxDev.push(chain.headId, HDR + 60, chain.ringSlots);
    addrs.push(chain.addr[0]!);
  }
  rxDev.flush();
  return addrs;
}

test('io-fwd: each received frame goes out in its own buffer, MACs swapped, header zeroed; the receive ring is refilled', () => {
  const { ram, d, rxDev, txDev } = rig('io-fwd');
  const addrs = receive(ram, rxDev, 3);
  assert.is(d.round(), 3);
  assert.equal(d.snapshot(), { txUsed: 0, rxUsed: 3, forwarded: 3, fwdDropped: 0 });
  const chain = new DescriptorChain(SIZE);
  for (let k = 0; k < 3; k++) {
    assert.ok(txDev.pop(chain), `transmit ${k}`);
    assert.is(chain.addr[0], addrs[k], 'sent from the buffer it was received in');
    assert.is(chain.readableLength, HDR + 60);
    const at = chain.addr[0]! - ram.base;
    assert.equal([...ram.bytes.subarray(at, at + HDR)], new Array(HDR).fill(0), '§5.1.6.2: flags 0, gso NONE, num_buffers 0');
    assert.equal([...ram.bytes.subarray(at + HDR, at + HDR + 12)], [...SRC, ...DST]);
    txDev.push(chain.headId, 0, chain.ringSlots);
  }
  assert.not.ok(txDev.pop(chain));
  txDev.flush();
  // The ring is full again: the 3 used slots came back holding free transmit buffers, none of the sent ones.
  for (let k = 0; k < SIZE; k++) {
    assert.ok(rxDev.pop(chain), `receive buffer ${k} after the round`);
    if (k >= SIZE - 3) assert.not.ok(addrs.includes(chain.addr[0]!), 'a replacement buffer, not one in flight on TX');
  }
  assert.is(d.round(), 0);
  assert.is(d.txUsed, 3, 'the sent buffers came back to the free list');
});

test('io-fwd: with every transmit buffer in flight a received frame is counted as dropped and its buffer goes back to the receive ring', () => {
  const { ram, d, rxDev, txDev } = rig('io-fwd');
  // SIZE frames take every free transmit buffer; the device leaves them all on the transmit ring.
  receive(ram, rxDev, SIZE);
  assert.is(d.round(), SIZE);
  const chain = new DescriptorChain(SIZE);
  const again = receive(ram, rxDev, 2);
  assert.is(d.round(), 0);
  assert.equal(d.snapshot(), { txUsed: 0, rxUsed: SIZE + 2, forwarded: SIZE, fwdDropped: 2 });
  // The ring holds SIZE buffers again: the SIZE - 2 left of the refill, then the two dropped frames' own.
  const back: number[] = [];
  for (let k = 0; k < SIZE; k++) {
    assert.ok(rxDev.pop(chain), `receive buffer ${k}`);
    back.push(chain.addr[0]!);
  }
  assert.equal(back.slice(SIZE - 2), again, 'the dropped frames\' buffers are offered again');
  for (let k = 0; k < SIZE; k++) assert.ok(txDev.pop(chain));
  assert.not.ok(txDev.pop(chain), 'nothing more was sent');
});

test('txonly: a round sends a burst of frames of the configured size from free buffers, none once all are in flight', () => {
  const { ram, d, txDev } = rig('txonly', 3);
  assert.is(d.round(), 3);
  const chain = new DescriptorChain(SIZE);
  for (let k = 0; k < 3; k++) {
    assert.ok(txDev.pop(chain));
    assert.is(chain.readableLength, HDR + 64);
    assert.ok(chain.addr[0]! - ram.base + HDR + 64 <= ram.size);
  }
  assert.not.ok(txDev.pop(chain));
  assert.is(d.round(), 3);
  assert.is(d.round(), 2, 'SIZE buffers in all');
  assert.is(d.round(), 0);
});

test('rxonly: frames are counted and their buffers offered again at once', () => {
  const { ram, d, rxDev } = rig('rxonly');
  receive(ram, rxDev, 5);
  assert.is(d.round(), 5);
  assert.equal(d.snapshot(), { txUsed: 0, rxUsed: 5, forwarded: 0, fwdDropped: 0 });
  const chain = new DescriptorChain(SIZE);
  for (let k = 0; k < SIZE; k++) assert.ok(rxDev.pop(chain));
  assert.is(chain.writableLength, PMD_BUFFER_SIZE);
});

test.run();
