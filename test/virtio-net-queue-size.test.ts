// rx_queue_size= / tx_queue_size= on -device virtio-net-pci, spelled as
// QEMU's: the largest Queue Size each receive / transmit queue offers
// (§4.1.4.3: queue_size reads the maximum after reset); the control queue
// keeps the default, and without them every queue offers 256.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VirtioPciCommonCfg as C } from 'virtio-spec-types';
import { LoopbackQueue } from '../src/backend/loopback/loopback-queue';
import { GuestMemory } from '../src/memory/guest-memory';
import { PciBus } from '../src/pci/pci-bus';
import { VirtioNetDevice, type VirtioNetOptions } from '../src/virtio/net/virtio-net-device';
import { VirtioPciDevice } from '../src/virtio/pci/virtio-pci-device';
import { parseRunOptions, RunOptionError } from '../src/vmm/run-options';
import { findVirtioStructures, MMIO32, PciGuest, RecordingSink } from './support/virtio-pci-guest';

const MAC = Uint8Array.of(0x52, 0x54, 0, 0x12, 0x34, 0x56);

/** queue_size of every queue as a driver reads it after reset, in queue order. */
function offeredSizes(o: Partial<VirtioNetOptions>, pairs = 2): number[] {
  const backends = Array.from({ length: pairs }, () => new LoopbackQueue({ slots: 8 }));
  const net = new VirtioNetDevice({ backends, mac: MAC, ...o });
  const bus = new PciBus({ mmio32: MMIO32 });
  const vpci = new VirtioPciDevice(net, { memory: new GuestMemory([{ gpa: 0, bytes: new Uint8Array(0x10000) }]) });
  const address = bus.add(vpci.pci, { interrupts: new RecordingSink(), interruptLine: 11 });
  const guest = new PciGuest(bus);
  const s = findVirtioStructures(guest, address.device);
  const count = guest.read(s.common + C.NUM_QUEUES, 2)!;
  return Array.from({ length: count }, (_, i) => {
    guest.write(s.common + C.QUEUE_SELECT, 2, i);
    return guest.read(s.common + C.QUEUE_SIZE, 2)!;
  });
}

test('receive and transmit queues offer their own maximum; the control queue keeps the default', () => {
  assert.equal(offeredSizes({}), [256, 256, 256, 256, 256]);
  assert.equal(offeredSizes({ rxQueueSize: 1024, txQueueSize: 512 }), [1024, 512, 1024, 512, 256]);
  assert.equal(offeredSizes({ rxQueueSize: 1024 }), [1024, 256, 1024, 256, 256]);
  assert.equal(offeredSizes({ txQueueSize: 1024 }, 1), [256, 1024, 256]);
});

test('a queue size that is not a power of 2 is refused when the device is built', () => {
  assert.throws(() => offeredSizes({ rxQueueSize: 300 }), /queueMaxSize 300 is not a power of 2/);
});

test('rx_queue_size= and tx_queue_size= parse as QEMU takes them: powers of 2 from 256 to 1024, else an error naming the property', () => {
  const base = ['-kernel', '/dev/null', '-netdev', 'af-xdp,id=n0,ifname=eth0'];
  const dev = (extra: string): string[] => [...base, '-device', `virtio-net-pci,netdev=n0${extra}`];
  assert.is(parseRunOptions(dev('')).nets[0]!.queueSizes, undefined);
  assert.equal(parseRunOptions(dev(',rx_queue_size=1024')).nets[0]!.queueSizes, { rx: 1024 });
  assert.equal(parseRunOptions(dev(',rx_queue_size=512,tx_queue_size=1024')).nets[0]!.queueSizes, { rx: 512, tx: 1024 });
  for (const [extra, why] of [
    [',rx_queue_size=128', /rx_queue_size: '128' is not an integer in 256\.\.1024/],
    [',tx_queue_size=2048', /tx_queue_size: '2048' is not an integer in 256\.\.1024/],
    [',rx_queue_size=768', /rx_queue_size 768 is not a power of 2/],
    [',tx_queue_size=big', /tx_queue_size: 'big'/],
  ] as const) {
    assert.throws(() => parseRunOptions(dev(extra)), (e: unknown) => e instanceof RunOptionError && why.test((e as Error).message), extra);
  }
});

test.run();
