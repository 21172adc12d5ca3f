// Guest RAM as the UMEM through the I/O thread path (xdpvm run's): the main
// thread opens the guest-umem backend over a mapping with the bounce frames
// behind guest RAM, the pair's I/O thread services the socket in place
// ('guest-umem' BackendQueueSource). Frames go both ways without a copy and
// are counted at both ends; a descriptor in guest memory outside the UMEM is
// refused (counted, never handed to the kernel by address) and one outside
// guest memory breaks the ring (nothing read); a device reset mid-traffic
// makes the thread let go and the main thread rebind, the kernel writes no
// guest byte afterwards, frames all come home and traffic resumes; tear-down
// leaves no fd and no XDP program.
import { readdirSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { featureMask, VirtioFeature } from 'virtio-spec-types';
import { AfXdpBackend } from '../src/backend/af-xdp/af-xdp-backend';
import { parseAfXdpOptions } from '../src/backend/af-xdp/af-xdp-options';
import { guestUmemTailBytes } from '../src/backend/af-xdp/guest-umem';
import type { AfXdpQueue } from '../src/backend/af-xdp/af-xdp-queue';
import { GuestBus } from '../src/fuzz/guest-bus';
import { SplitRingDriver } from '../src/fuzz/split-ring-driver';
import { inNetns, type VethPair } from '../src/host/netns';
import { WorkerQueuePairRunner } from '../src/io/worker-queue-pair-runner';
import type { FrameAccounting, SharedRegion } from '../src/io/io-thread-protocol';
import type { PairCounters } from '../src/io/pair-counters';
import { GuestMemory } from '../src/memory/guest-memory';
import { sys } from '../src/native/sys';
import { xsk } from '../src/native/xsk';
import type { QueueConfig } from '../src/virtio/device';
import { frameSeq, frameTag, makeFrame } from './support/frames';
import { receive, sendAll, sleep } from './support/queue-traffic';
import { openBackend, TEST_TUNING, withVeth } from './support/veth-backends';

const MEM = 16 << 20;
const HDR = 12;
const Q = 256;
const TX_BUF = 0x10_0000;
const RX_BUF = 0x40_0000;
/** A second guest region that is not part of the registered area. */
const FOREIGN_GPA = 0x1_0000_0000;
const FOREIGN = 1 << 20;

function ring(index: number, base: number): QueueConfig {
  return { index, size: Q, kind: 'split', enabled: true, descAddr: base, driverAddr: base + 0x1000, deviceAddr: base + 0x2000 };
}

interface Rig {
  pair: VethPair;
  a: AfXdpBackend;
  peer: AfXdpQueue;
  bytes: Uint8Array;
  memory: GuestMemory;
  guest: GuestBus;
  runner: WorkerQueuePairRunner;
  broken: () => boolean;
  /** Starts a session (as DRIVER_OK does): fresh rings at the same addresses. */
  start(): Promise<{ rxDrv: SplitRingDriver; txDrv: SplitRingDriver }>;
}

/** Guest RAM (with the bounce tail) registered by a guest-umem backend on one end, serviced by an I/O thread; a copy-path peer. */
async function withThreadRig(tag: string, body: (r: Rig) => Promise<void>): Promise<void> {
  await withVeth(tag, {}, async (pair) => {
    const area = sys.guestMemory(MEM + guestUmemTailBytes(1, TEST_TUNING.ringSize));
    const foreign = sys.mapAnonymous(FOREIGN, 'base');
    const a = inNetns(pair.a.netns, () =>
      AfXdpBackend.open(parseAfXdpOptions(`af-xdp,id=a,ifname=${pair.a.ifname},guest-umem=on`), TEST_TUNING, {
        guestRam: { buffer: area, guestLength: MEM, hugePages: false },
      }),
    );
    const b = openBackend(pair.b.netns, `af-xdp,id=b,ifname=${pair.b.ifname}`);
    const regions: SharedRegion[] = [
      { gpa: 0, address: sys.addressOf(area), length: MEM },
      { gpa: FOREIGN_GPA, address: sys.addressOf(foreign), length: FOREIGN },
    ];
    const sources = a.threadSources();
    assert.is(sources[0]!.kind, 'guest-umem');
    const runner = new WorkerQueuePairRunner({ regions, backends: sources, rebind: (p) => a.rebindForThread(p), spinRounds: 200 });
    const bytes = new Uint8Array(area, 0, MEM);
    const memory = new GuestMemory([
      { gpa: 0, bytes },
      { gpa: FOREIGN_GPA, bytes: new Uint8Array(foreign) },
    ]);
    const guest = new GuestBus(bytes, [{ gpa: 0, offset: 0, length: MEM }]);
    let broken = false;
    const features = featureMask(VirtioFeature.VERSION_1, VirtioFeature.EVENT_IDX);
    const start = async (): Promise<{ rxDrv: SplitRingDriver; txDrv: SplitRingDriver }> => {
      const rx = ring(0, 0x1_0000);
      const tx = ring(1, 0x2_0000);
      const rxDrv = new SplitRingDriver(guest, { size: Q, descAddr: rx.descAddr, availAddr: rx.driverAddr, usedAddr: rx.deviceAddr }, { eventIdx: true });
      const txDrv = new SplitRingDriver(guest, { size: Q, descAddr: tx.descAddr, availAddr: tx.driverAddr, usedAddr: tx.deviceAddr }, { eventIdx: true });
      runner.start(
        { pair: 0, rx, tx, features, mergeable: false, offloads: { csum: false, tso: false } },
        { memory, signalUsed: () => {}, markNeedsReset: () => (broken = true) },
      );
      for (let i = 0; i < 200 && !runner.isRunning(0); i++) await sleep(10);
      assert.ok(runner.isRunning(0), 'the I/O thread runs the session');
      return { rxDrv, txDrv };
    };
    try {
      await body({ pair, a, peer: b.queues[0]!, bytes, memory, guest, runner, broken: () => broken, start });
    } finally {
      await runner.close();
      a.close();
      b.close();
      sys.unmap(foreign);
      sys.unmap(area);
    }
  });
}

/** Waits until `n` used entries came back on a ring; returns them. */
async function usedEntries(drv: SplitRingDriver, n: number, ms = 5000): Promise<Array<{ id: number; len: number }>> {
  const got: Array<{ id: number; len: number }> = [];
  const deadline = Date.now() + ms;
  while (got.length < n && Date.now() < deadline) {
    got.push(...drv.pollUsed());
    if (got.length < n) await sleep(5);
  }
  return got;
}

/** Frames (tag `tag`) written into the guest's TX buffers and made available, header in the same buffer. */
function offerTx(r: Rig, drv: SplitRingDriver, from: number, count: number, tag: number, len = 200): void {
  for (let i = from; i < from + count; i++) {
    const f = makeFrame(i, len, tag);
    const addr = TX_BUF + (i % Q) * 2048;
    r.bytes.fill(0, addr, addr + HDR);
    r.bytes.set(f, addr + HDR);
    drv.add([{ addr, len: HDR + f.length, write: false }]);
  }
  drv.publish();
  sys.eventfdWrite(r.runner.fds[0]!.txKick, 1);
}

/** Posts receive buffers and waits until the thread has put them on the Fill ring (a frame before that is dropped). */
async function offerRx(r: Rig, drv: SplitRingDriver, count: number): Promise<void> {
  const refills = (): number => r.runner.stats(0)?.backend.fillRefills ?? 0;
  const before = refills();
  for (let i = 0; i < count; i++) drv.add([{ addr: RX_BUF + i * 4096, len: 4096, write: true }]);
  drv.publish();
  sys.eventfdWrite(r.runner.fds[0]!.rxKick, 1);
  await settled(refills, (v) => v > before);
}

/** Sends from the peer and kicks until its Tx ring is empty (copy mode sends only inside sendto; a busy veth leaves frames). */
async function peerSend(peer: AfXdpQueue, frames: Uint8Array[]): Promise<number> {
  const dropped = await sendAll(peer, frames);
  for (let i = 0; i < 500 && peer.txUnsent() > 0; i++) {
    peer.txFlush();
    await sleep(2);
  }
  return dropped;
}

/** The thread publishes every 64 rounds and before it sleeps. */
async function settled<T>(read: () => T, ok: (v: T) => boolean, ms = 3000): Promise<T> {
  const deadline = Date.now() + ms;
  let v = read();
  while (!ok(v) && Date.now() < deadline) {
    await sleep(10);
    v = read();
  }
  return v;
}

const N = 200;

test('frames both ways through the I/O thread with guest RAM as the UMEM: in place, counted at both ends', async () => {
  await withThreadRig('gutio', async (r) => {
    const { rxDrv, txDrv } = await r.start();
    // Guest -> wire: every frame in place (txDirect), used only once the kernel completed it.
    offerTx(r, txDrv, 0, N, 3);
    const atPeer = await receive(r.peer, N, 5000, (f) => frameSeq(f) >= 0 && frameTag(f) === 3);
    assert.is(atPeer.length, N, `peer received ${atPeer.length}`);
    atPeer.forEach((f, i) => assert.equal(f, makeFrame(i, 200, 3)));
    assert.is((await usedEntries(txDrv, N)).length, N, 'every transmit chain used');
    // Wire -> guest: into the guest's buffers in place (rxDirect).
    await offerRx(r, rxDrv, 128);
    assert.is(await peerSend(r.peer, Array.from({ length: 100 }, (_, i) => makeFrame(i, 100 + i, 4))), 0);
    const used = await usedEntries(rxDrv, 100);
    const mine = used
      .map((u) => r.bytes.slice(RX_BUF + u.id * 4096 + HDR, RX_BUF + u.id * 4096 + u.len))
      .filter((f) => frameSeq(f) >= 0 && frameTag(f) === 4);
    assert.is(mine.length, 100, `guest received ${mine.length}`);
    mine.forEach((f, i) => assert.equal(f, makeFrame(i, 100 + i, 4)));
    const s = await settled(() => r.runner.stats(0)!, (v) => (v.guestUmem?.rxDirect ?? 0) >= 100 && v.guestUmem!.txDirectCompleted >= N);
    const g = s.guestUmem!;
    assert.ok(g, 'guest-umem counters published');
    assert.is(g.txDirect, N, JSON.stringify(g));
    assert.is(g.txDirectCompleted, N);
    assert.is(g.txBounced, 0);
    assert.ok(g.rxDirect >= 100, JSON.stringify(g));
    assert.is(g.refusedOutside + g.unknownCompletions + g.unknownRx + g.rxBadOffset, 0);
    assert.is(s.device.txFrames, N);
    assert.ok(s.device.rxFrames >= 100);
    assert.not.ok(r.broken());
  });
});

test('a descriptor outside registered memory never becomes a UMEM address: refused and copied, or (outside guest memory) the ring breaks, nothing read', async () => {
  await withThreadRig('gutiox', async (r) => {
    const { txDrv } = await r.start();
    // In guest memory, but not in the UMEM: refused for the direct path (counted), copied through a bounce frame.
    const f = makeFrame(1, 300, 7);
    const fb = new Uint8Array(HDR + f.length);
    fb.set(f, HDR);
    r.memory.write(FOREIGN_GPA + 0x1000, fb, 0, fb.length);
    txDrv.add([{ addr: FOREIGN_GPA + 0x1000, len: fb.length, write: false }]);
    txDrv.publish();
    sys.eventfdWrite(r.runner.fds[0]!.txKick, 1);
    const got = await receive(r.peer, 1, 3000, (x) => frameTag(x) === 7);
    assert.is(got.length, 1);
    assert.equal(got[0], f);
    const s = await settled(() => r.runner.stats(0)!, (v) => (v.guestUmem?.refusedOutside ?? 0) >= 1 && v.guestUmem!.txBounced >= 1);
    assert.is(s.guestUmem!.refusedOutside, 1, JSON.stringify(s.guestUmem));
    assert.is(s.guestUmem!.txBounced, 1);
    assert.is(s.guestUmem!.txDirect, 0);
    // Outside any guest memory: the ring breaks (§2.1.2), the frame is neither read nor sent.
    txDrv.add([{ addr: 0x2_0000_0000, len: 64, write: false }]);
    txDrv.publish();
    sys.eventfdWrite(r.runner.fds[0]!.txKick, 1);
    const broke = await settled(() => r.broken(), (v) => v);
    assert.ok(broke, 'the device needs a reset');
    const after = r.runner.stats(0)!;
    assert.is(after.broken.cause, 'ring');
    assert.ok((after.queueErrors.AddressOutOfRange ?? 0) >= 1 || Object.keys(after.queueErrors).length > 0, JSON.stringify(after.queueErrors));
    assert.is(after.guestUmem!.txDirect + after.guestUmem!.txBounced, 1, 'nothing more went to the kernel');
    assert.is((await receive(r.peer, 1, 300, (x) => frameTag(x) === 7)).length, 0);
  });
});

test('device reset mid-traffic: the thread lets go, the socket is rebound, no guest byte written after, no frame leaked, traffic resumes', async () => {
  await withThreadRig('gutior', async (r) => {
    const { rxDrv, txDrv } = await r.start();
    await offerRx(r, rxDrv, 200);
    // Traffic both ways while the reset comes: the peer floods, the guest sends. The flood is paced (4 frames a
    // tick) so the kernel still holds some of the 200 guest buffers when the reset comes, which is what it tests.
    let flooding = true;
    const flood = (async (): Promise<void> => {
      for (let k = 0; flooding; k++) {
        await sendAll(r.peer, Array.from({ length: 4 }, (_, i) => makeFrame(k * 4 + i, 500, 5)));
        await sleep(1);
      }
    })();
    // A failed assertion must not leave the flood writing to a peer the rig has closed.
    const stopFlood = async (): Promise<void> => {
      flooding = false;
      await flood;
    };
    let fa0: FrameAccounting;
    let s: PairCounters;
    try {
      offerTx(r, txDrv, 0, 150, 3);
      await settled(() => r.runner.stats(0)!, (v) => (v.guestUmem?.rxDirect ?? 0) > 20);
      fa0 = r.runner.frameAccounting(0)!;
      const t0 = performance.now();
      r.runner.stopAll();
      const resetMs = performance.now() - t0;
      assert.ok(resetMs < 5000, `reset took ${resetMs} ms`);
      assert.not.ok(r.runner.isRunning(0));
      s = r.runner.stats(0)!;
      assert.is(s.guestUmem!.resets, 1, JSON.stringify(s.guestUmem));
      // The guest reuses all its memory at once; the peer keeps sending.
      r.bytes.fill(0xa5, 0, MEM);
      await sleep(300);
    } finally {
      await stopFlood();
    }
    let bad = -1;
    for (let i = 0; i < MEM; i++) {
      if (r.bytes[i] !== 0xa5) {
        bad = i;
        break;
      }
    }
    assert.is(bad, -1, `guest memory changed at offset ${bad} after the reset`);
    // Every bounce frame is back in the pool: nothing the kernel held is lost.
    const fa = r.runner.frameAccounting(0)!;
    assert.is(fa.frameCount, fa0.frameCount);
    assert.is(fa.total, fa.frameCount, JSON.stringify(fa));
    assert.is(fa.pool, fa.frameCount, JSON.stringify(fa));
    // The driver brings the device up again: both ways work on the rebound socket.
    r.bytes.fill(0, 0, MEM);
    const again = await r.start();
    offerTx(r, again.txDrv, 0, 50, 8);
    const back = await receive(r.peer, 50, 5000, (f) => frameSeq(f) >= 0 && frameTag(f) === 8);
    assert.is(back.length, 50);
    assert.is((await usedEntries(again.txDrv, 50)).length, 50);
    // Drain what the flood left on the peer's side first.
    await receive(r.peer, 10_000, 200, () => false);
    await offerRx(r, again.rxDrv, 128);
    assert.is(await peerSend(r.peer, Array.from({ length: 60 }, (_, i) => makeFrame(i, 120, 9))), 0);
    const got: Uint8Array[] = [];
    const deadline = Date.now() + 5000;
    while (got.length < 60 && Date.now() < deadline) {
      for (const u of again.rxDrv.pollUsed()) {
        const f = r.bytes.slice(RX_BUF + u.id * 4096 + HDR, RX_BUF + u.id * 4096 + u.len);
        if (frameSeq(f) >= 0 && frameTag(f) === 9) got.push(f);
      }
      if (got.length < 60) await sleep(5);
    }
    assert.is(got.length, 60, `guest received ${got.length} after the reset`);
    const end = await settled(() => r.runner.stats(0)!, (v) => (v.guestUmem?.txDirectCompleted ?? 0) >= 50);
    assert.ok(end.guestUmem!.rxDirect > s.guestUmem!.rxDirect, 'received in place after the reset');
    assert.is(end.guestUmem!.unknownCompletions + end.guestUmem!.unknownRx, 0, JSON.stringify(end.guestUmem));
    const final = r.runner.frameAccounting(0)!;
    assert.is(final.total, final.frameCount, JSON.stringify(final));
    assert.not.ok(r.broken());
  });
});

test('tear-down after traffic and a reset: no fd left, the XDP program detached', async () => {
  const fds = (): number => readdirSync('/proc/self/fd').length;
  let ifindex = 0;
  let netns = '';
  const before = fds();
  await withThreadRig('gutiot', async (r) => {
    netns = r.pair.a.netns;
    ifindex = inNetns(netns, () => xsk.ifNameToIndex(r.pair.a.ifname));
    const { rxDrv, txDrv } = await r.start();
    await offerRx(r, rxDrv, 64);
    offerTx(r, txDrv, 0, 20, 3);
    assert.is((await receive(r.peer, 20, 3000, (f) => frameTag(f) === 3)).length, 20);
    r.runner.stopAll();
    await r.start();
    assert.ok(inNetns(netns, () => xsk.xdpQuery(ifindex).attached !== 0), 'our program is attached meanwhile');
    await r.runner.close();
    r.a.close();
    assert.is(inNetns(netns, () => xsk.xdpQuery(ifindex).attached), 0, 'the program is detached');
  });
  // The veth pair is gone with its namespaces; every socket, eventfd and mapping fd is closed.
  assert.is(fds(), before);
});

test.run();
