// Test rigs: one guest memory region (inside a larger buffer whose canary
// bytes must stay untouched), a ring laid out in it, the device-side queue
// and a well-behaved driver for the other side.
import { GuestMemory } from '../../src/memory/guest-memory';
import { PackedRingDriver } from '../../src/fuzz/packed-ring-driver';
import { SplitRingDriver } from '../../src/fuzz/split-ring-driver';
import { DescriptorChain } from '../../src/virtio/queue/descriptor-chain';
import { PackedQueue } from '../../src/virtio/queue/packed-queue';
import { QueueErrorCounters } from '../../src/virtio/queue/queue-error';
import { SplitQueue } from '../../src/virtio/queue/split-queue';

export const BASE_GPA = 0x10_0000;
export const REGION_SIZE = 0x4_0000;
const PAD = 256;
const CANARY = 0x5a;

export interface RigOptions {
  size: number;
  eventIdx?: boolean;
  indirect?: boolean;
  /** Split: initial avail/used idx for both sides. */
  base?: number;
}

export interface Layout {
  descAddr: number;
  driverAddr: number;
  deviceAddr: number;
  /** Room for indirect tables (64 KiB). */
  tableAddr: number;
  /** Room for buffers (up to the region end). */
  dataAddr: number;
}

function layoutFor(size: number): Layout {
  const align = (n: number, a: number): number => Math.ceil(n / a) * a;
  const descAddr = BASE_GPA;
  const driverAddr = align(descAddr + 16 * size, 64);
  const deviceAddr = align(driverAddr + 6 + 2 * size, 64);
  const tableAddr = align(deviceAddr + 6 + 8 * size, 4096);
  const dataAddr = tableAddr + 0x1_0000;
  return { descAddr, driverAddr, deviceAddr, tableAddr, dataAddr };
}

export interface Guest {
  memory: GuestMemory;
  backing: Uint8Array;
  canariesIntact(): boolean;
}

export function makeGuest(): Guest {
  const backing = new Uint8Array(PAD + REGION_SIZE + PAD).fill(CANARY);
  const bytes = backing.subarray(PAD, PAD + REGION_SIZE);
  bytes.fill(0);
  const memory = new GuestMemory([{ gpa: BASE_GPA, bytes }]);
  return {
    memory,
    backing,
    canariesIntact: () => backing.subarray(0, PAD).every((b) => b === CANARY) && backing.subarray(PAD + REGION_SIZE).every((b) => b === CANARY),
  };
}

export interface SplitRig extends Guest {
  layout: Layout;
  queue: SplitQueue;
  driver: SplitRingDriver;
  chain: DescriptorChain;
  counters: QueueErrorCounters;
}

export function splitRig(o: RigOptions): SplitRig {
  const guest = makeGuest();
  const layout = layoutFor(o.size);
  const eventIdx = o.eventIdx ?? false;
  const driver = new SplitRingDriver(
    guest.memory,
    { size: o.size, descAddr: layout.descAddr, availAddr: layout.driverAddr, usedAddr: layout.deviceAddr },
    { eventIdx, base: o.base },
  );
  const counters = new QueueErrorCounters();
  const queue = new SplitQueue(
    guest.memory,
    { size: o.size, descAddr: layout.descAddr, driverAddr: layout.driverAddr, deviceAddr: layout.deviceAddr },
    { features: { eventIdx, indirect: o.indirect ?? true }, counters, availBase: o.base, usedBase: o.base },
  );
  return { ...guest, layout, queue, driver, chain: new DescriptorChain(o.size), counters };
}

export interface PackedRig extends Guest {
  layout: Layout;
  queue: PackedQueue;
  driver: PackedRingDriver;
  chain: DescriptorChain;
  counters: QueueErrorCounters;
}

export function packedRig(o: RigOptions): PackedRig {
  const guest = makeGuest();
  const layout = layoutFor(o.size);
  const eventIdx = o.eventIdx ?? false;
  const driver = new PackedRingDriver(
    guest.memory,
    { size: o.size, descAddr: layout.descAddr, driverEventAddr: layout.driverAddr, deviceEventAddr: layout.deviceAddr },
    { eventIdx },
  );
  const counters = new QueueErrorCounters();
  const queue = new PackedQueue(
    guest.memory,
    { size: o.size, descAddr: layout.descAddr, driverAddr: layout.driverAddr, deviceAddr: layout.deviceAddr },
    { features: { eventIdx, indirect: o.indirect ?? true }, counters },
  );
  return { ...guest, layout, queue, driver, chain: new DescriptorChain(o.size), counters };
}

/** `n` buffers of `len` bytes at consecutive addresses from `at`; the first `readable` are device-readable. */
export function buffers(at: number, n: number, readable: number, len = 64): Array<{ addr: number; len: number; write: boolean }> {
  return Array.from({ length: n }, (_, k) => ({ addr: at + k * len, len, write: k >= readable }));
}
