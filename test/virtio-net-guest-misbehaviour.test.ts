// A driver that breaks ring rules through real rings (§2.7 / §2.8, §5.1.6):
// the device stops the queue, sets DEVICE_NEEDS_RESET with a configuration
// change notification (§2.1.2), and nothing throws (no exception reaches
// the transport's guard). A reset and a fresh bring-up then work.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DescFlags, DeviceStatus, NetCtrlRx, NetFeature as N, SplitAvail, VirtioFeature as V, featureMask } from 'virtio-spec-types';
import { PackedRingDriver } from '../src/fuzz/packed-ring-driver';
import { CONFIG_VECTOR, CTRL_NO_ANSWER, createNetRig, type NetRig } from '../src/test-driver';
import { QueueError, queueErrorName } from '../src/virtio/queue';
import { makeFrame } from './support/frames';

type Kind = 'split' | 'packed';

interface Case {
  readonly name: string;
  readonly kinds: readonly Kind[];
  /** Negotiate INDIRECT_DESC (default true). */
  readonly indirect?: boolean;
  /** Post the normal receive chains (default true). */
  readonly rx?: boolean;
  /** Breaks a rule; returns nothing, must not throw. */
  readonly act: (rig: NetRig) => void;
  /** The violation the pair's counters record (undefined: the control queue's own). */
  readonly error?: number;
}

const cases: Case[] = [
  {
    name: 'a device-readable descriptor in a receive chain',
    kinds: ['split', 'packed'],
    rx: false,
    error: QueueError.DeviceRejected,
    act: (rig) => {
      const q = rig.driver.rx().queue;
      q.add([{ addr: rig.ram.alloc(64), len: 12, write: false }, { addr: rig.ram.alloc(2048), len: 2048, write: true }]);
      q.kick();
      rig.loopbacks[0]!.inject(makeFrame(1, 100));
      rig.driver.poll();
    },
  },
  {
    name: 'a descriptor loop (a -> b -> a) in a transmit chain',
    kinds: ['split'],
    error: QueueError.DescriptorLoop,
    act: (rig) => {
      const q = rig.driver.tx().queue;
      const s = q.split!;
      const buf = rig.ram.alloc(256);
      s.writeDescriptor(10, buf, 40, DescFlags.NEXT, 11);
      s.writeDescriptor(11, buf + 40, 40, DescFlags.NEXT, 10);
      s.offerHead(10);
      q.publish();
      q.notify();
    },
  },
  {
    name: 'a loop inside an indirect table',
    kinds: ['split'],
    error: QueueError.DescriptorLoop,
    act: (rig) => {
      const q = rig.driver.tx().queue;
      const s = q.split!;
      const buf = rig.ram.alloc(256);
      const table = rig.ram.alloc(48);
      const w = (i: number, next: number): void => {
        rig.ram.access.writeU32(table + 16 * i, buf);
        rig.ram.access.writeU32(table + 16 * i + 4, 0);
        rig.ram.access.writeU32(table + 16 * i + 8, 30);
        rig.ram.access.writeU16(table + 16 * i + 12, DescFlags.NEXT);
        rig.ram.access.writeU16(table + 16 * i + 14, next);
      };
      w(0, 1);
      w(1, 2);
      w(2, 0);
      s.writeDescriptor(20, table, 48, DescFlags.INDIRECT, 0);
      s.offerHead(20);
      q.publish();
      q.notify();
    },
  },
  {
    name: 'a transmit buffer outside guest memory',
    kinds: ['split', 'packed'],
    error: QueueError.AddressOutOfRange,
    act: (rig) => {
      const q = rig.driver.tx().queue;
      q.add([{ addr: rig.ram.end + 0x1000, len: 100, write: false }]);
      q.kick();
    },
  },
  {
    name: 'a buffer straddling the end of guest memory',
    kinds: ['split', 'packed'],
    error: QueueError.AddressOutOfRange,
    act: (rig) => {
      const q = rig.driver.tx().queue;
      q.add([{ addr: rig.ram.end - 50, len: 100, write: false }]);
      q.kick();
    },
  },
  {
    name: 'a buffer address at 2^60',
    kinds: ['split', 'packed'],
    error: QueueError.AddressOutOfRange,
    act: (rig) => {
      const q = rig.driver.tx().queue;
      q.add([{ addr: 2 ** 60, len: 100, write: false }]);
      q.kick();
    },
  },
  {
    name: 'an indirect table longer than Queue Size (a too-long chain)',
    kinds: ['split', 'packed'],
    error: QueueError.IndirectTooLong,
    act: (rig) => {
      const q = rig.driver.tx().queue;
      const buf = rig.ram.alloc(64);
      q.add(Array.from({ length: q.size + 1 }, () => ({ addr: buf, len: 14, write: false })), true);
      q.kick();
    },
  },
  {
    name: 'a NEXT-linked list around the whole ring (a too-long chain)',
    kinds: ['packed'],
    error: QueueError.ChainTooLong,
    act: (rig) => {
      const q = rig.driver.tx().queue;
      const p = q.packed!;
      const buf = rig.ram.alloc(64);
      const avail = PackedRingDriver.availBits(1);
      for (let i = q.size - 1; i >= 0; i--) p.writeDescriptor(i, buf, 14, 0, DescFlags.NEXT | avail);
      q.notify();
    },
  },
  {
    name: 'an indirect descriptor without INDIRECT_DESC negotiated',
    kinds: ['split', 'packed'],
    indirect: false,
    error: QueueError.IndirectNotNegotiated,
    act: (rig) => {
      const q = rig.driver.tx().queue;
      q.add([{ addr: rig.ram.alloc(128), len: 100, write: false }], true);
      q.kick();
    },
  },
  {
    name: 'avail->idx moved more than Queue Size ahead',
    kinds: ['split'],
    error: QueueError.AvailIdxJump,
    act: (rig) => {
      const q = rig.driver.tx().queue;
      rig.ram.access.writeU16(q.driverAddr + SplitAvail.IDX, q.size + 5);
      q.notify();
    },
  },
  {
    name: 'a readable descriptor after a writable one in a control command',
    kinds: ['split', 'packed'],
    act: (rig) => {
      const q = rig.driver.ctrl!.queue;
      const at = rig.ram.alloc(16);
      q.add([{ addr: at, len: 2, write: false }, { addr: at + 4, len: 1, write: true }, { addr: at + 8, len: 1, write: false }]);
      q.kick();
    },
  },
];

function running(kind: Kind, c: Case): NetRig {
  const rig = createNetRig();
  const features = featureMask(V.EVENT_IDX, N.CTRL_VQ, N.CTRL_RX, ...(c.indirect === false ? [] : [V.INDIRECT_DESC]), ...(kind === 'packed' ? [V.RING_PACKED] : []));
  assert.ok(rig.driver.bringUp({ features, rx: c.rx === false ? false : {} }).ok);
  rig.irq.clear();
  return rig;
}

for (const c of cases) {
  for (const kind of c.kinds) {
    test(`${kind}: ${c.name} -> DEVICE_NEEDS_RESET with a config interrupt, nothing thrown`, () => {
      const rig = running(kind, c);
      const { driver } = rig;
      c.act(rig);
      assert.ok(driver.status & DeviceStatus.DEVICE_NEEDS_RESET, 'DEVICE_NEEDS_RESET');
      assert.ok(driver.status & DeviceStatus.DRIVER_OK, 'DRIVER_OK stays');
      assert.equal(rig.irq.vectors(), [CONFIG_VECTOR], 'one configuration change notification');
      assert.is(rig.vpci.deviceErrors, 0, `no exception reached the transport (${String(rig.vpci.lastDeviceError)})`);
      if (c.error !== undefined) {
        const errors = rig.device.queuePairs()[0]!.errors.toJSON();
        assert.equal(Object.keys(errors), [queueErrorName(c.error)]);
        // The broken pair stays quiet: more kicks, polls and traffic change nothing and throw nothing.
        const before = rig.loopbacks[0]!.txFrames;
        driver.send(makeFrame(2, 80));
        driver.poll();
        for (let i = 0; i < driver.numQueues; i++) if (driver.queues[i]) driver.notify(i);
        assert.is(rig.loopbacks[0]!.txFrames, before);
        assert.equal(rig.irq.vectors(), [CONFIG_VECTOR], "no further interrupts");
      } else {
        // The control queue is stopped: no more answers (the data queues are a different matter).
        assert.is(driver.setRxMode(NetCtrlRx.PROMISC, true), CTRL_NO_ANSWER);
      }
      assert.is(rig.vpci.deviceErrors, 0);
      // §2.1.2: the driver resets and starts again (frames still on the "wire" are not this test's).
      rig.loopbacks[0]!.rxRelease(rig.loopbacks[0]!.rxPeek(1 << 20));
      const r = driver.bringUp({ features: kind === 'packed' ? featureMask(V.RING_PACKED) : 0n });
      assert.ok(r.ok);
      assert.is(driver.status & DeviceStatus.DEVICE_NEEDS_RESET, 0);
      const f = makeFrame(3, 300);
      driver.send(f);
      const got = driver.receiveAtLeast(1);
      assert.is(got.length, 1);
      assert.equal(got[0]!.frame, f);
    });
  }
}

test('INTx: a broken ring raises ISR bit 1 (configuration change)', () => {
  const rig = createNetRig();
  rig.driver.bringUp({ features: 0n, msix: false });
  const q = rig.driver.tx().queue;
  q.add([{ addr: rig.ram.end + 4096, len: 64, write: false }]);
  q.kick();
  assert.ok(rig.driver.needsReset);
  assert.is(rig.irq.intxLevel, true);
  assert.is(rig.driver.readIsr() & 2, 2);
});

test.run();
