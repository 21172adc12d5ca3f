// One I/O thread serving several queue pairs (iothread-vq-mapping), over
// loopback backend queues the thread opens itself from a plain description
// (queue-source.ts): every pair's frames stay on its own rings, a stop or a
// broken ring ends only that pair's session, and the thread keeps serving
// the others. The main thread plays the guest.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { featureMask, VirtioFeature } from 'virtio-spec-types';
import { SplitRingDriver } from '../src/fuzz/split-ring-driver';
import { GuestBus } from '../src/fuzz/guest-bus';
import { threadMapping } from '../src/io/io-thread-protocol';
import { WorkerQueuePairRunner } from '../src/io/worker-queue-pair-runner';
import { GuestMemory } from '../src/memory/guest-memory';
import { sys } from '../src/native/sys';
import type { QueueConfig } from '../src/virtio/device';
import type { RingResume } from '../src/virtio/net/queue-pair-runner';
import { frameSeq, frameTag, makeFrame } from './support/frames';
import { sleep } from './support/queue-traffic';

const MEM = 16 << 20;
const HDR = 12;
const N = 64;
const FEATURES = featureMask(VirtioFeature.VERSION_1);

function ring(index: number, base: number): QueueConfig {
  return { index, size: 256, kind: 'split', enabled: true, descAddr: base, driverAddr: base + 0x1000, deviceAddr: base + 0x2000 };
}

/** The guest side of one pair: its rings at 0x10000 * (1 + 2 * pair), its buffers in its own MiB ranges. */
class GuestPair {
  readonly rx: QueueConfig;
  readonly tx: QueueConfig;
  readonly rxDrv: SplitRingDriver;
  readonly txDrv: SplitRingDriver;
  readonly rxBase: number;
  readonly txBase: number;
  private sent = 0;
  readonly received: Uint8Array[] = [];
  needsReset = false;

  constructor(
    readonly pair: number,
    private readonly bytes: Uint8Array,
    guest: GuestBus,
  ) {
    this.rx = ring(2 * pair, 0x10000 + pair * 0x20000);
    this.tx = ring(2 * pair + 1, 0x20000 + pair * 0x20000);
    const drv = (q: QueueConfig): SplitRingDriver =>
      new SplitRingDriver(guest, { size: 256, descAddr: q.descAddr, availAddr: q.driverAddr, usedAddr: q.deviceAddr }, { eventIdx: false });
    this.rxDrv = drv(this.rx);
    this.txDrv = drv(this.tx);
    this.rxBase = 0x200000 + pair * 0x300000;
    this.txBase = this.rxBase + 0x100000;
  }

  start(runner: WorkerQueuePairRunner, memory: GuestMemory, resume?: { rx: RingResume; tx: RingResume }): void {
    runner.start(
      {
        pair: this.pair, rx: this.rx, tx: this.tx, features: FEATURES, mergeable: false, offloads: { csum: false, tso: false },
        ...(resume ? { rxResume: resume.rx, txResume: resume.tx } : {}),
      },
      { memory, signalUsed: () => {}, markNeedsReset: () => (this.needsReset = true) },
    );
  }

  postRx(n: number): void {
    for (let i = 0; i < n; i++) this.rxDrv.add([{ addr: this.rxBase + (i % 256) * 2048, len: 2048, write: true }]);
    this.rxDrv.publish();
  }

  /** n frames tagged with the pair, kicked once. */
  send(runner: WorkerQueuePairRunner, n: number): void {
    for (let k = 0; k < n; k++) {
      const i = this.sent++;
      const f = makeFrame(i, 60 + (i % 64), 10 + this.pair);
      const addr = this.txBase + (i % 256) * 2048;
      this.bytes.fill(0, addr, addr + HDR);
      this.bytes.set(f, addr + HDR);
      this.txDrv.add([{ addr, len: HDR + f.length, write: false }]);
    }
    this.txDrv.publish();
    sys.eventfdWrite(runner.fds[this.pair]!.txKick, 1);
  }

  /** Takes what the device put on the receive ring. */
  collect(): void {
    for (const u of this.rxDrv.pollUsed()) {
      const at = this.rxBase + u.id * 2048;
      this.received.push(this.bytes.slice(at + HDR, at + u.len));
    }
    this.txDrv.pollUsed();
  }

  async waitReceived(n: number): Promise<void> {
    for (let i = 0; i < 300 && this.received.length < n; i++) {
      this.collect();
      if (this.received.length < n) await sleep(10);
    }
  }
}

async function withSharedThread(body: (r: { runner: WorkerQueuePairRunner; bytes: Uint8Array; memory: GuestMemory; pairs: GuestPair[] }) => Promise<void>): Promise<void> {
  const ram = sys.mapAnonymous(MEM, 'thp');
  const bytes = new Uint8Array(ram);
  const runner = new WorkerQueuePairRunner({
    regions: [{ gpa: 0, address: sys.addressOf(ram), length: MEM }],
    backends: [{ kind: 'loopback', slots: 256, slotSize: 2048 }, { kind: 'loopback', slots: 256, slotSize: 2048 }],
    threadOf: [0, 0],
    spinRounds: 200,
  });
  const guest = new GuestBus(bytes, [{ gpa: 0, offset: 0, length: MEM }]);
  try {
    await body({ runner, bytes, memory: new GuestMemory([{ gpa: 0, bytes }]), pairs: [0, 1].map((p) => new GuestPair(p, bytes, guest)) });
  } finally {
    await runner.close();
    sys.unmap(ram);
  }
}

async function waitRunning(runner: WorkerQueuePairRunner, pair: number): Promise<void> {
  for (let i = 0; i < 200 && !runner.isRunning(pair); i++) await sleep(10);
  assert.ok(runner.isRunning(pair), `pair ${pair} serviced`);
}

test('one I/O thread serves two queue pairs: each pair\'s frames come back on its own rings only', async () => {
  await withSharedThread(async ({ runner, memory, pairs }) => {
    assert.is(runner.threadCount, 1);
    for (const p of pairs) p.start(runner, memory);
    for (const p of pairs) await waitRunning(runner, p.pair);
    assert.ok(runner.threadId(0) > 0, 'the thread published its id');
    assert.is(runner.threadId(1), runner.threadId(0), 'both pairs served by the same Linux thread');
    for (const p of pairs) p.postRx(128);
    for (const p of pairs) p.send(runner, N);
    for (const p of pairs) await p.waitReceived(N);
    for (const p of pairs) {
      assert.is(p.received.length, N, `pair ${p.pair} received ${p.received.length}`);
      p.received.forEach((f, i) => {
        assert.is(frameTag(f), 10 + p.pair, `pair ${p.pair}: only its own frames`);
        assert.is(frameSeq(f), i);
        assert.equal(f, makeFrame(i, 60 + (i % 64), 10 + p.pair));
      });
      const c = runner.counters(p.pair)!;
      assert.is(c.txFrames, N, `pair ${p.pair} txFrames`);
      assert.is(c.rxFrames, N, `pair ${p.pair} rxFrames`);
      const frames = runner.frameAccounting(p.pair)!;
      assert.is(frames.frameCount, 256);
      assert.is(frames.total, 256, `pair ${p.pair}: every loopback slot accounted for: ${JSON.stringify(frames)}`);
      assert.not.ok(p.needsReset);
    }
  });
});

test('stopping one pair of a shared thread leaves the other serviced; the stopped one resumes where its rings stopped', async () => {
  await withSharedThread(async ({ runner, memory, pairs }) => {
    const [p0, p1] = pairs as [GuestPair, GuestPair];
    for (const p of pairs) p.start(runner, memory);
    for (const p of pairs) await waitRunning(runner, p.pair);
    for (const p of pairs) p.postRx(128);
    p0.send(runner, 8);
    await p0.waitReceived(8);
    assert.is(p0.received.length, 8);

    const at = await runner.stop(0);
    assert.ok(at, 'positions of the stopped session');
    assert.is(at!.tx.nextAvail, 8);
    assert.is(at!.rx.nextUsed, 8);
    assert.not.ok(runner.isRunning(0));
    assert.ok(runner.isRunning(1), 'pair 1 still serviced');

    // Pair 0 is not serviced: its frames wait on its ring. Pair 1 goes on.
    p0.send(runner, 8);
    p1.send(runner, N);
    await p1.waitReceived(N);
    assert.is(p1.received.length, N, 'pair 1 serviced while pair 0 is stopped');
    await sleep(50);
    p0.collect();
    assert.is(p0.received.length, 8, 'nothing moved on the stopped pair');
    assert.is(runner.counters(0)!.txFrames, 8);

    // Restarted from where it stopped: the 8 frames queued meanwhile go through.
    p0.start(runner, memory, { rx: { availBase: at!.rx.nextAvail, usedBase: at!.rx.nextUsed }, tx: { availBase: at!.tx.nextAvail, usedBase: at!.tx.nextUsed } });
    await waitRunning(runner, 0);
    sys.eventfdWrite(runner.fds[0]!.txKick, 1);
    await p0.waitReceived(16);
    assert.is(p0.received.length, 16);
    p0.received.forEach((f, i) => assert.is(frameSeq(f), i));
    assert.is(runner.counters(0)!.txFrames, 16, 'counters carry across the sessions of a pair');
    assert.not.ok(p0.needsReset || p1.needsReset);
  });
});

test('a ring that breaks a rule ends only its own pair\'s session on a shared thread', async () => {
  await withSharedThread(async ({ runner, memory, pairs }) => {
    const [p0, p1] = pairs as [GuestPair, GuestPair];
    for (const p of pairs) p.start(runner, memory);
    for (const p of pairs) await waitRunning(runner, p.pair);
    p1.postRx(128);
    // A Tx descriptor past the end of guest memory: §2.1.2, the device marks itself broken.
    p0.txDrv.add([{ addr: MEM + 0x1000, len: 64, write: false }]);
    p0.txDrv.publish();
    sys.eventfdWrite(runner.fds[0]!.txKick, 1);
    for (let i = 0; i < 200 && !p0.needsReset; i++) await sleep(10);
    assert.ok(p0.needsReset, 'pair 0 asked for a reset');
    for (let i = 0; i < 100 && runner.isRunning(0); i++) await sleep(10);
    assert.not.ok(runner.isRunning(0), 'pair 0 no longer serviced');
    assert.is(runner.stats(0)!.broken.cause, 'ring');
    assert.ok(runner.stats(0)!.broken.tx !== null, 'the Tx ring named as the one that broke');
    p1.send(runner, N);
    await p1.waitReceived(N);
    assert.is(p1.received.length, N, 'pair 1 unaffected');
    assert.not.ok(p1.needsReset);
  });
});

test('the pair -> thread mapping: every pair on a thread that exists, threads numbered without gaps', () => {
  assert.equal(threadMapping(3, undefined), [0, 1, 2]);
  assert.equal(threadMapping(4, [0, 1, 0, 1]), [0, 1, 0, 1]);
  assert.throws(() => threadMapping(2, [0]), /names 1 queue pair\(s\), the device has 2/);
  assert.throws(() => threadMapping(2, [0, 2]), /I\/O thread '2' is not between 0 and 1/);
  assert.throws(() => threadMapping(2, [1, 1]), /I\/O thread 0 serves no queue pair/);
  assert.throws(() => threadMapping(2, [0, 0.5]), /'0.5' is not/);
  assert.throws(
    () => new WorkerQueuePairRunner({ regions: [], backends: [{ kind: 'loopback' }, { kind: 'loopback' }], threadOf: [0, 0], cpus: [0, 1] }),
    /2 CPUs named for 1 I\/O thread/,
  );
});

test.run();
