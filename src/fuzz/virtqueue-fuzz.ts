// `xdpvm fuzz virtqueue`: hostile-driver fuzzing of the split and packed
// virtqueues. Each case builds a small guest memory (two regions with a hole,
// inside a larger buffer whose canary bytes must never change), places a ring
// in it (sometimes misaligned, out of range, near 2^53 / 2^64, overlapping),
// then interleaves a well-behaved driver, a saboteur rewriting ring memory
// (loops, huge lengths, bad indices, stale or jumping idx, wrap-counter
// flips, indirect abuse, wild addresses), and a device (FuzzTarget) driving
// pop / push / flush / undo / notifications. Counted: exceptions escaping the
// device side, rejected memory accesses, queues that stopped themselves (with
// reasons), chains that broke the queue's guarantees, and damaged canaries.
import { GuestMemory } from '../memory/guest-memory';
import { sys } from '../native/sys';
import { DescFlags, PackedDesc, PackedDescFlags, SplitAvail, SplitDesc, SplitUsed, splitAvailSize, splitUsedEventOffset } from 'virtio-spec-types';
import { PackedQueue } from '../virtio/queue/packed-queue';
import { QueueErrorCounters } from '../virtio/queue/queue-error';
import { SplitQueue } from '../virtio/queue/split-queue';
import type { QueueLayout, Virtqueue } from '../virtio/queue/virtqueue';
import { FuzzRng, caseSeed } from './fuzz-rng';
import type { FuzzTarget } from './fuzz-target';
import { GenericDeviceTarget } from './generic-device-target';
import { type DriverBuffer, TWO_POW_32, writeAddress } from './guest-access';
import { type BusRegion, GuestBus } from './guest-bus';
import { PackedRingDriver } from './packed-ring-driver';
import { SplitRingDriver } from './split-ring-driver';

export interface VirtqueueFuzzOptions {
  readonly cases: number;
  readonly seed: number;
  /** Index of the first case (runs cases firstCase..firstCase+cases-1, so a long run can be split into chunks). */
  readonly firstCase?: number;
  /** The device under test; a GenericDeviceTarget when omitted. */
  readonly target?: FuzzTarget;
}

export interface VirtqueueFuzzResult {
  cases: number;
  /** Exceptions that escaped the device side (queue or target). Must be 0. */
  escaped: number;
  /** Accesses the guest memory accessor rejected (the queue asked, memory said no). */
  outOfRange: number;
  /** Cases whose queue stopped itself. */
  broken: number;
  /** Why queues stopped, by QueueError name. */
  reasons: Record<string, number>;
  /** Chains handed out that broke the queue's guarantees. Must be 0. */
  badChains: number;
  /** Cases after which a canary byte around the guest regions had changed. Must be 0. */
  canaryDamaged: number;
  /** Exceptions in the fuzz engine's own guest side (an engine bug if non-zero). */
  harnessErrors: number;
  /** First escaped exception, for reproduction. */
  firstEscape?: { case: number; message: string };
}

// Guest memory: region A at GPA 0, a hole, region B; canaries around both.
const CANARY = 0xc3;
const PAD = 256;
const A_GPA = 0;
const A_SIZE = 0x8000;
const B_GPA = 0x2_0000;
const B_SIZE = 0x4000;
const A_OFFSET = PAD;
const B_OFFSET = PAD + A_SIZE + PAD;
const BACKING_SIZE = B_OFFSET + B_SIZE + PAD;
// Zones inside region A for a well-placed ring.
const DESC_ZONE = 0x0000;
const DRIVER_ZONE = 0x1000;
const DEVICE_ZONE = 0x1800;
const TABLE_ZONE = 0x2800;
const DATA_ZONE = 0x4000;

interface Arena {
  backing: Uint8Array;
  regionA: Uint8Array;
  regionB: Uint8Array;
}

function makeArena(tail = 0): Arena {
  // With a tail the arena is a mapping (a target may hand it to native code as one UMEM), tail at its end.
  const buffer = tail > 0 ? sys.mapAnonymous(Math.ceil((BACKING_SIZE + tail) / 4096) * 4096, 'base') : new ArrayBuffer(BACKING_SIZE);
  const backing = new Uint8Array(buffer, 0, BACKING_SIZE).fill(CANARY);
  return {
    backing,
    regionA: backing.subarray(A_OFFSET, A_OFFSET + A_SIZE),
    regionB: backing.subarray(B_OFFSET, B_OFFSET + B_SIZE),
  };
}

function canariesIntact(backing: Uint8Array): boolean {
  for (let i = 0; i < A_OFFSET; i++) if (backing[i] !== CANARY) return false;
  for (let i = A_OFFSET + A_SIZE; i < B_OFFSET; i++) if (backing[i] !== CANARY) return false;
  for (let i = B_OFFSET + B_SIZE; i < BACKING_SIZE; i++) if (backing[i] !== CANARY) return false;
  return true;
}

/** An address from the places a hostile driver likes. */
function hostileAddress(rng: FuzzRng): number {
  switch (rng.int(14)) {
    case 0:
      return DATA_ZONE + rng.int(A_SIZE - DATA_ZONE);
    case 1:
      return B_GPA + rng.int(B_SIZE);
    case 2:
      return A_SIZE - rng.int(16); // straddles the end of A
    case 3:
      return 0;
    case 4:
      return A_SIZE + rng.int(B_GPA - A_SIZE); // the hole
    case 5:
      return B_GPA + B_SIZE - rng.int(8);
    case 6:
      return 2 ** 53 - rng.int(64);
    case 7:
      return 2 ** 64 - (1 + rng.int(1024)) * 2 ** 12; // near 2^64
    case 8:
      return TWO_POW_32 + rng.int(A_SIZE); // high word 1
    case 9:
      return rng.u32() * TWO_POW_32 + rng.u32();
    case 10:
      return rng.int(A_SIZE); // anywhere in A, rings included
    case 11:
      return DESC_ZONE + 16 * rng.int(64);
    case 12:
      return TABLE_ZONE + 16 * rng.int(64);
    default:
      return rng.u32();
  }
}

function hostileLength(rng: FuzzRng): number {
  switch (rng.int(10)) {
    case 0:
      return 0;
    case 1:
      return 1;
    case 2:
      return 0xffff_ffff;
    case 3:
      return 0x8000_0000;
    case 4:
      return A_SIZE;
    case 5:
      return rng.u32();
    case 6:
      return 16 * rng.int(300);
    default:
      return rng.int(4096);
  }
}

/** A ring address, usually well placed in `zone`, sometimes not. */
function ringAddress(rng: FuzzRng, zone: number, align: number, span: number): number {
  if (!rng.chance(0.04)) return zone + align * rng.int(Math.max(1, Math.floor(span / align)));
  switch (rng.int(11)) {
    case 0:
      return zone + 1 + rng.int(align > 1 ? align - 1 : 1); // misaligned
    case 1:
      return A_SIZE - align * (1 + rng.int(4)); // straddles the end of A
    case 2:
      return A_SIZE + 0x1000; // in the hole
    case 3:
      return 2 ** 53 - 16;
    case 4:
      return 2 ** 64 - 4096;
    case 5:
      return Number.NaN;
    case 6:
      return -16;
    case 7:
      return 0.5;
    case 8:
      return Number.POSITIVE_INFINITY;
    case 9:
      return DESC_ZONE; // overlaps the descriptor area
    default:
      return B_GPA + align * rng.int(16);
  }
}

function queueSize(rng: FuzzRng, packed: boolean): number {
  if (rng.chance(0.03)) return rng.pick([0, 3, 32769, 65536, 1.5, -4, Number.NaN]);
  if (packed) return rng.chance(0.3) ? 1 + rng.int(4) : 1 + rng.int(128);
  return 1 << rng.int(8);
}

/** Buffers for a well-formed chain in the data zones. */
function someBuffers(rng: FuzzRng, maxCount: number, useB: boolean): DriverBuffer[] {
  const n = 1 + rng.int(Math.max(1, Math.min(maxCount, 6)));
  const readable = rng.int(n + 1);
  const out: DriverBuffer[] = [];
  for (let k = 0; k < n; k++) {
    const len = rng.chance(0.05) ? 0 : 1 + rng.int(256);
    const inB = useB && rng.chance(0.3);
    const addr = inB ? B_GPA + rng.int(B_SIZE - len) : DATA_ZONE + rng.int(A_SIZE - DATA_ZONE - len);
    out.push({ addr, len, write: k >= readable });
  }
  return out;
}

/** The parts of a case the saboteur needs. */
interface Case {
  rng: FuzzRng;
  bus: GuestBus;
  packed: boolean;
  size: number;
  layout: QueueLayout;
  split: SplitRingDriver | null;
  packedDriver: PackedRingDriver | null;
  indirect: boolean;
  /** Region B is mapped in this case. */
  twoRegions: boolean;
}

/** The well-behaved driver's move: offer a few chains (sometimes indirect) and notify. */
function driverMove(c: Case): void {
  const { rng } = c;
  const chains = 1 + rng.int(4);
  for (let k = 0; k < chains; k++) {
    const useIndirect = (c.indirect || rng.chance(0.02)) && rng.chance(0.25);
    const table = useIndirect ? TABLE_ZONE + 16 * rng.int(200) : undefined;
    const bufs = someBuffers(rng, useIndirect ? 6 : Math.max(1, Number.isInteger(c.size) ? c.size : 1), c.twoRegions);
    if (c.split !== null) c.split.add(bufs, table);
    else if (c.packedDriver !== null) c.packedDriver.add(bufs, table);
  }
  if (c.split !== null) c.split.publish();
  else if (c.packedDriver !== null) c.packedDriver.publish();
}

function driverCollect(c: Case): void {
  if (c.split !== null) c.split.pollUsed();
  else if (c.packedDriver !== null) c.packedDriver.pollUsed();
}

function descIndex(c: Case): number {
  return Number.isInteger(c.size) && c.size > 0 && c.size <= 0x8000 ? c.rng.int(c.size) : c.rng.int(16);
}

/** The saboteur's move: one hostile rewrite of ring or table memory. */
function sabotage(c: Case): void {
  const { rng, bus, layout } = c;
  const desc = layout.descAddr;
  switch (rng.int(12)) {
    case 0: {
      // A descriptor with hostile contents.
      const o = desc + 16 * descIndex(c);
      writeAddress(bus, o, hostileAddress(rng));
      bus.writeU32(o + 8, hostileLength(rng));
      bus.writeU32(o + 12, rng.u32()); // flags + next (split) / id + flags (packed)
      break;
    }
    case 1: {
      // A loop: i -> j -> i (split), or NEXT everywhere (packed).
      if (!c.packed) {
        const i = descIndex(c);
        const j = descIndex(c);
        bus.writeU16(desc + 16 * i + SplitDesc.FLAGS, DescFlags.NEXT | (rng.u32() & DescFlags.WRITE));
        bus.writeU16(desc + 16 * i + SplitDesc.NEXT, j);
        bus.writeU16(desc + 16 * j + SplitDesc.FLAGS, DescFlags.NEXT);
        bus.writeU16(desc + 16 * j + SplitDesc.NEXT, i);
      } else {
        const n = Number.isInteger(c.size) ? Math.min(c.size, 64) : 4;
        for (let k = 0; k < n; k++) {
          const o = desc + 16 * k + PackedDesc.FLAGS;
          bus.writeU16(o, bus.readU16(o) | DescFlags.NEXT);
        }
      }
      break;
    }
    case 2: {
      // Indirect abuse: a descriptor pointing at a table with hostile length, nested tables, loops.
      const table = TABLE_ZONE + 16 * rng.int(200);
      const entries = 1 + rng.int(8);
      for (let j = 0; j < entries; j++) {
        const o = table + 16 * j;
        writeAddress(bus, o, rng.chance(0.7) ? DATA_ZONE + rng.int(0x1000) : hostileAddress(rng));
        bus.writeU32(o + 8, rng.chance(0.8) ? rng.int(512) : hostileLength(rng));
        const flags = rng.pick([0, DescFlags.WRITE, DescFlags.NEXT, DescFlags.INDIRECT, rng.u32() & 0xffff]);
        bus.writeU16(o + 12, c.packed ? rng.u32() & 0xffff : flags);
        bus.writeU16(o + 14, c.packed ? flags : rng.pick([j + 1, j, 0, rng.int(0x10000)]));
      }
      const o = desc + 16 * descIndex(c);
      writeAddress(bus, o, rng.chance(0.8) ? table : hostileAddress(rng));
      bus.writeU32(o + 8, rng.pick([16 * entries, 16 * entries + 8, 0, 16 * 40000, rng.u32()]));
      const indirectFlags = DescFlags.INDIRECT | (rng.chance(0.2) ? DescFlags.NEXT : 0);
      if (c.packed) bus.writeU16(o + PackedDesc.FLAGS, indirectFlags | (rng.chance(0.5) ? PackedDescFlags.AVAIL : PackedDescFlags.USED));
      else bus.writeU16(o + SplitDesc.FLAGS, indirectFlags);
      break;
    }
    case 3: {
      if (!c.packed) {
        // avail->idx: a jump, a step back, or garbage.
        const at = layout.driverAddr + SplitAvail.IDX;
        const idx = bus.readU16(at);
        bus.writeU16(at, rng.pick([(idx + 1) & 0xffff, (idx - 1) & 0xffff, (idx + c.size + 1) & 0xffff, rng.u32() & 0xffff]));
      } else {
        // Flip the AVAIL / USED bits of a slot.
        const o = desc + 16 * descIndex(c) + PackedDesc.FLAGS;
        bus.writeU16(o, bus.readU16(o) ^ rng.pick([PackedDescFlags.AVAIL, PackedDescFlags.USED, PackedDescFlags.AVAIL | PackedDescFlags.USED]));
      }
      break;
    }
    case 4: {
      if (!c.packed) {
        // A head index out of range or duplicated, then publish it.
        const at = layout.driverAddr + SplitAvail.IDX;
        const idx = bus.readU16(at);
        const size = Number.isInteger(c.size) && c.size > 0 ? c.size : 1;
        bus.writeU16(layout.driverAddr + SplitAvail.RING + 2 * (idx % size), rng.pick([size, 0xffff, rng.u32() & 0xffff, 0]));
        bus.writeU16(at, (idx + 1) & 0xffff);
      } else {
        // Make a slot available under the wrong wrap counter.
        const o = desc + 16 * descIndex(c) + PackedDesc.FLAGS;
        bus.writeU16(o, PackedRingDriver.availBits(rng.int(2)) | (rng.u32() & 7));
      }
      break;
    }
    case 5: {
      // Scribble random bytes over ring memory.
      const n = 1 + rng.int(32);
      for (let k = 0; k < n; k++) {
        const base = rng.pick([layout.descAddr, layout.driverAddr, layout.deviceAddr]);
        bus.writeU8(base + rng.int(64), rng.u32() & 0xff);
      }
      break;
    }
    case 6: {
      // Rewrite the whole descriptor area mid-run.
      const n = Number.isInteger(c.size) && c.size > 0 ? Math.min(c.size, 128) : 8;
      for (let k = 0; k < 4 * n; k++) bus.writeU32(desc + 4 * k, rng.chance(0.5) ? 0 : rng.u32());
      break;
    }
    case 7: {
      // Event suppression fields: used_event / avail flags (split), driver event struct (packed).
      if (!c.packed) {
        bus.writeU16(layout.driverAddr + SplitAvail.FLAGS, rng.u32() & 0xffff);
        if (Number.isInteger(c.size)) bus.writeU16(layout.driverAddr + splitUsedEventOffset(c.size), rng.u32() & 0xffff);
      } else {
        bus.writeU32(layout.driverAddr, rng.u32());
      }
      break;
    }
    case 8: {
      // The driver writes into the device's area (used ring / device event struct).
      bus.writeU32(layout.deviceAddr + 4 * rng.int(8), rng.u32());
      if (!c.packed) bus.writeU16(layout.deviceAddr + SplitUsed.IDX, rng.u32() & 0xffff);
      break;
    }
    case 9: {
      // A huge total length over a few valid-looking descriptors.
      if (!c.packed) {
        const i = descIndex(c);
        const j = descIndex(c);
        writeAddress(bus, desc + 16 * i, DATA_ZONE);
        bus.writeU32(desc + 16 * i + 8, 0xf000_0000);
        bus.writeU16(desc + 16 * i + SplitDesc.FLAGS, DescFlags.NEXT);
        bus.writeU16(desc + 16 * i + SplitDesc.NEXT, j);
        writeAddress(bus, desc + 16 * j, DATA_ZONE);
        bus.writeU32(desc + 16 * j + 8, 0x2000_0000);
      } else {
        const o = desc + 16 * descIndex(c);
        bus.writeU32(o + PackedDesc.LEN, 0xffff_fff0);
      }
      break;
    }
    case 10: {
      // A readable buffer after a writable one, in place.
      const o = desc + 16 * descIndex(c);
      const flagsAt = c.packed ? o + PackedDesc.FLAGS : o + SplitDesc.FLAGS;
      bus.writeU16(flagsAt, bus.readU16(flagsAt) ^ DescFlags.WRITE);
      break;
    }
    default: {
      // Zero the whole ring area (a driver reset behind the device's back).
      if (Number.isInteger(c.size) && c.size > 0 && c.size <= 128) {
        for (let k = 0; k < 4 * c.size; k++) bus.writeU32(desc + 4 * k, 0);
        if (!c.packed) for (let k = 0; k < splitAvailSize(c.size); k += 2) bus.writeU16(layout.driverAddr + k, 0);
      }
      break;
    }
  }
}

/** Runs `cases` fuzz cases from `seed`. Deterministic for a given (cases, seed, target). */
export function runVirtqueueFuzz(options: VirtqueueFuzzOptions): VirtqueueFuzzResult {
  const cases = Math.max(0, Math.floor(options.cases));
  const target: FuzzTarget = options.target ?? new GenericDeviceTarget();
  const counters = new QueueErrorCounters();
  const arena = makeArena(target.memoryTail);
  const result: VirtqueueFuzzResult = {
    cases,
    escaped: 0,
    outOfRange: 0,
    broken: 0,
    reasons: {},
    badChains: 0,
    canaryDamaged: 0,
    harnessErrors: 0,
  };
  const badChainsBefore = target.badChains;

  const first = options.firstCase ?? 0;
  for (let index = first; index < first + cases; index++) {
    const rng = new FuzzRng(caseSeed(options.seed, index));
    arena.regionA.fill(0);
    arena.regionB.fill(0);
    const twoRegions = rng.chance(0.7);
    const memory = new GuestMemory(
      twoRegions
        ? [
            { gpa: A_GPA, bytes: arena.regionA },
            { gpa: B_GPA, bytes: arena.regionB },
          ]
        : [{ gpa: A_GPA, bytes: arena.regionA }],
    );
    const busRegions: BusRegion[] = [{ gpa: A_GPA, offset: A_OFFSET, length: A_SIZE }];
    if (twoRegions) busRegions.push({ gpa: B_GPA, offset: B_OFFSET, length: B_SIZE });
    const bus = new GuestBus(arena.backing, busRegions);

    const packed = rng.chance(0.5);
    const size = queueSize(rng, packed);
    const eventIdx = rng.chance(0.5);
    const indirect = rng.chance(0.6);
    const layout: QueueLayout = {
      size,
      descAddr: ringAddress(rng, DESC_ZONE, 16, 0x1000 - 16 * 128),
      driverAddr: ringAddress(rng, DRIVER_ZONE, packed ? 4 : 2, 0x800 - 262),
      deviceAddr: ringAddress(rng, DEVICE_ZONE, 4, 0x1000 - 1030),
    };
    const base = !packed && rng.chance(0.5) ? rng.pick([0xffff, 0xfff0, rng.u32() & 0xffff]) : 0;

    let queue: Virtqueue | null = null;
    const c: Case = { rng, bus, packed, size, layout, split: null, packedDriver: null, indirect, twoRegions };
    try {
      // The guest sets up its rings first (writes to bad addresses go nowhere).
      if (Number.isInteger(size) && size >= 1 && size <= 0x8000) {
        if (packed) {
          c.packedDriver = new PackedRingDriver(bus, { size, descAddr: layout.descAddr, driverEventAddr: layout.driverAddr, deviceEventAddr: layout.deviceAddr }, { eventIdx });
        } else {
          c.split = new SplitRingDriver(bus, { size, descAddr: layout.descAddr, availAddr: layout.driverAddr, usedAddr: layout.deviceAddr }, { eventIdx, base });
        }
      }
    } catch {
      result.harnessErrors++;
    }

    try {
      const features = { eventIdx, indirect };
      queue = packed
        ? new PackedQueue(memory, layout, { features, counters })
        : new SplitQueue(memory, layout, { features, counters, availBase: base, usedBase: base });
      target.attach(queue, memory);
    } catch (e) {
      noteEscape(result, index, e);
    }

    const steps = 4 + rng.int(40);
    for (let s = 0; s < steps && queue !== null; s++) {
      const move = rng.int(10);
      if (move < 5) {
        try {
          target.step(rng);
        } catch (e) {
          noteEscape(result, index, e);
        }
      } else {
        try {
          if (move < 8) driverMove(c);
          else if (move === 8) driverCollect(c);
          else if (rng.chance(0.6)) sabotage(c);
        } catch {
          result.harnessErrors++;
        }
      }
    }
    // Drain: whatever the guest left must not make the device throw either.
    if (queue !== null) {
      try {
        for (let k = 0; k < 4; k++) target.step(rng);
      } catch (e) {
        noteEscape(result, index, e);
      }
      if (queue.broken) result.broken++;
    }
    result.outOfRange += memory.outOfRange;
    if (!canariesIntact(arena.backing)) {
      result.canaryDamaged++;
      arena.backing.fill(CANARY);
    }
  }
  result.reasons = counters.toJSON();
  result.badChains = target.badChains - badChainsBefore;
  if (target.memoryTail) sys.unmap(arena.backing.buffer as ArrayBuffer);
  return result;
}

function noteEscape(result: VirtqueueFuzzResult, index: number, e: unknown): void {
  result.escaped++;
  if (result.firstEscape === undefined) {
    result.firstEscape = { case: index, message: e instanceof Error ? `${e.name}: ${e.message}` : String(e) };
  }
}
