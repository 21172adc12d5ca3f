// Guest RAM as the UMEM (guest-umem=on): the test driver's RAM is registered
// with the AF_XDP socket on one end of a veth pair; frames go both ways
// without a copy and are counted at both ends. Also: guest buffers outside
// registered memory are refused (copied instead), a transmitted chain is used
// only after the kernel's completion, a reset with buffers on the Fill ring
// leaves no kernel write into guest memory, a refused registration falls back
// with one message, option errors, and tear-down leaks no fd.
import { readdirSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VirtioFeature as V, featureMask } from 'virtio-spec-types';
import { AfXdpBackend } from '../src/backend/af-xdp/af-xdp-backend';
import { OptionError, parseAfXdpOptions, type AfXdpOptions } from '../src/backend/af-xdp/af-xdp-options';
import { DEFAULT_RING_SIZE } from '../src/backend/af-xdp/xsk-socket';
import { planGuestUmem } from '../src/vmm/guest-umem-plan';
import { guestUmemTailBytes } from '../src/backend/af-xdp/guest-umem';
import { GuestUmemQueue } from '../src/backend/af-xdp/guest-umem-queue';
import { DIRECT_POSTED, DIRECT_REFUSED } from '../src/backend/guest-umem-direct';
import { inNetns } from '../src/host/netns';
import { GuestMemory } from '../src/memory/guest-memory';
import { sys } from '../src/native/sys';
import { createNetRig, GuestRam, type BringUpOptions, type ReceivedFrame } from '../src/test-driver';
import { frameSeq, makeFrame } from './support/frames';
import { receive, sendAll, sleep } from './support/queue-traffic';
import { openBackend, TEST_TUNING, withVeth } from './support/veth-backends';
import { stderrOf } from './support/stderr-capture';

const RAM = 16 << 20;
const RAM_BASE = 0x10_0000;
const isTest = (f: Uint8Array): boolean => frameSeq(f) !== -1;

interface GuestSide {
  ram: GuestRam;
  backend: AfXdpBackend;
  area: ArrayBuffer;
  close(): void;
}

/** Guest RAM with the bounce tail behind it, and a backend that registers it. */
function openGuestSide(netns: string, spec: string, queues = 1): GuestSide {
  const area = sys.guestMemory(RAM + guestUmemTailBytes(queues, TEST_TUNING.ringSize));
  const ram = new GuestRam(RAM, RAM_BASE, area);
  const backend = inNetns(netns, () =>
    AfXdpBackend.open(parseAfXdpOptions(spec), TEST_TUNING, { guestRam: { buffer: area, guestLength: RAM, hugePages: false } }),
  );
  return {
    ram,
    backend,
    area,
    close: () => {
      backend.close();
      sys.unmap(area);
    },
  };
}

function direct(b: AfXdpBackend, q = 0): GuestUmemQueue {
  const d = b.guestUmemQueues?.[q];
  if (!d) throw new Error('guest RAM is not the UMEM');
  return d;
}

interface Rig {
  g: GuestSide;
  peer: AfXdpBackend;
  rig: ReturnType<typeof createNetRig>;
  q: GuestUmemQueue;
}

/** A veth pair: guest RAM as the UMEM on one end behind the test driver (brought up), a copy-path backend on the other. */
async function withGuestUmemRig(tag: string, bring: Omit<BringUpOptions, 'features'> & { features?: bigint }, fn: (r: Rig) => Promise<void>): Promise<void> {
  await withVeth(tag, {}, async (pair) => {
    const g = openGuestSide(pair.a.netns, `af-xdp,id=a,ifname=${pair.a.ifname},guest-umem=on`);
    const peer = openBackend(pair.b.netns, `af-xdp,id=b,ifname=${pair.b.ifname}`);
    try {
      const rig = createNetRig({ backends: g.backend.deviceQueues, ram: g.ram });
      assert.ok(rig.driver.bringUp({ features: featureMask(V.EVENT_IDX), ...bring }).ok);
      await fn({ g, peer, rig, q: direct(g.backend) });
    } finally {
      g.close();
      peer.close();
    }
  });
}

async function driverToPeer(rig: ReturnType<typeof createNetRig>, peer: AfXdpBackend, frames: Uint8Array[]): Promise<Uint8Array[]> {
  const { driver } = rig;
  const got: Uint8Array[] = [];
  for (let i = 0; i < frames.length; i += 50) {
    const chunk = frames.slice(i, i + 50);
    assert.is(driver.send(chunk), chunk.length);
    for (let k = 0; k < 50 && driver.tx().inFlight > 0; k++) {
      driver.poll();
      driver.tx().reclaim();
      if (driver.tx().inFlight > 0) await sleep(1);
    }
    got.push(...(await receive(peer.queues[0]!, chunk.length, 5000, isTest)));
  }
  return got;
}

async function peerToDriver(rig: ReturnType<typeof createNetRig>, peer: AfXdpBackend, frames: Uint8Array[]): Promise<ReceivedFrame[]> {
  const { driver } = rig;
  const got: ReceivedFrame[] = [];
  for (let i = 0; i < frames.length; i += 50) {
    const chunk = frames.slice(i, i + 50);
    assert.is(await sendAll(peer.queues[0]!, chunk), 0);
    const deadline = Date.now() + 5000;
    let n = 0;
    while (n < chunk.length && Date.now() < deadline) {
      driver.poll();
      const r = driver.receive().filter((g) => isTest(g.frame));
      n += r.length;
      got.push(...r);
      if (r.length === 0) await sleep(1);
    }
  }
  return got;
}

const N = 400;

for (const packed of [false, true]) {
  for (const rxSize of [2048, 1526]) {
    const how = rxSize >= 1530 ? 'in place' : 'through bounce frames (buffers too small for a 1518-byte frame)';
    test(`${packed ? 'packed' : 'split'}: ${N} frames each way with guest RAM as the UMEM, received ${how}, counted at both ends`, async () => {
      await withVeth('gumem', {}, async (pair) => {
        const g = openGuestSide(pair.a.netns, `af-xdp,id=a,ifname=${pair.a.ifname},guest-umem=on`);
        const b = openBackend(pair.b.netns, `af-xdp,id=b,ifname=${pair.b.ifname}`);
        try {
          const rig = createNetRig({ backends: g.backend.deviceQueues, ram: g.ram });
          const feats = featureMask(V.EVENT_IDX, V.INDIRECT_DESC, ...(packed ? [V.RING_PACKED] : []));
          assert.ok(rig.driver.bringUp({ features: feats, rx: { sizes: [rxSize] } }).ok);
          const out = Array.from({ length: N }, (_, i) => makeFrame(i, 60 + ((i * 53) % 1455), 1));
          const atPeer = await driverToPeer(rig, b, out);
          assert.is(atPeer.length, N, `peer received ${atPeer.length} of ${N}`);
          atPeer.forEach((f, i) => assert.equal(f, out[i]));

          const back = Array.from({ length: N }, (_, i) => makeFrame(i, 60 + ((i * 71) % 1455), 2));
          const atDriver = await peerToDriver(rig, b, back);
          assert.is(atDriver.length, N, `driver received ${atDriver.length} of ${N}`);
          atDriver.forEach((r, i) => {
            assert.equal(r.frame, back[i]);
            assert.is(r.header.numBuffers, 1);
          });
          const d = direct(g.backend).direct;
          assert.is(d.txDirect, N, 'every frame sent from guest memory in place');
          assert.is(d.txDirectCompleted, N);
          if (rxSize >= 1530) assert.ok(d.rxDirect >= N, `rxDirect ${d.rxDirect}`);
          else assert.ok(d.rxBounced >= N && d.rxDirect === 0, `rxBounced ${d.rxBounced}`);
          assert.is(d.unknownCompletions + d.unknownRx + d.rxBadOffset, 0);
          const c = rig.device.queuePairs()[0]!.counters;
          assert.is(c.txFrames, N);
          assert.not.ok(rig.driver.needsReset);
          assert.is(rig.vpci.deviceErrors, 0);
        } finally {
          g.close();
          b.close();
        }
      });
    });
  }
}

test('frames the in-place path cannot carry (header in its own buffer + frame over two, checksum to finish) are copied and still arrive', async () => {
  await withGuestUmemRig('gumemc', { rx: { sizes: [2048] } }, async ({ peer: b, rig, q }) => {
    const split = Array.from({ length: 20 }, (_, i) => makeFrame(i, 200 + i, 3));
    assert.is(rig.driver.send(split, { separateHeader: true, descriptors: 3 }), split.length);
    const d = q.direct;
    for (let k = 0; k < 50 && rig.driver.tx().inFlight > 0; k++) {
      rig.driver.poll();
      rig.driver.tx().reclaim();
      await sleep(1);
    }
    const got = await receive(b.queues[0]!, split.length, 5000, isTest);
    assert.is(got.length, split.length);
    assert.ok(d.txBounced >= 1, `txBounced ${d.txBounced}`);
  });
});

test('one-descriptor frames go in place a burst at a time; chains, runts and header-apart frames between them keep ring order', async () => {
  await withGuestUmemRig('gumemb', { rx: false }, async ({ peer: b, rig, q }) => {
    const tx = rig.driver.tx();
    // In place: one descriptor (the burst), header apart + one frame buffer (pop, in place); copied: over three.
    const layouts: Array<Parameters<typeof tx.add>[1]> = [{}, {}, { descriptors: 3 }, {}, { indirect: false, separateHeader: true }, {}, {}];
    const sent: Uint8Array[] = [];
    let inPlace = 0;
    for (let i = 0; i < 40; i++) {
      const layout = layouts[i % layouts.length]!;
      const f = makeFrame(i, 60 + 37 * i, 5);
      assert.ok(tx.add(f, layout));
      sent.push(f);
      if (layout.descriptors === undefined) inPlace++;
      // A runt (header and 10 bytes) in the middle: dropped, counted, used at once.
      if (i === 20) assert.ok(tx.add(new Uint8Array(10)));
    }
    tx.kick();
    const got = await receive(b.queues[0]!, sent.length, 5000, isTest);
    assert.equal(got.map(frameSeq), sent.map((_, i) => i), 'ring order at the peer');
    got.forEach((f, i) => assert.equal(f, sent[i]));
    for (let k = 0; k < 100 && tx.inFlight > 0; k++) {
      rig.driver.poll();
      tx.reclaim();
      if (tx.inFlight > 0) await sleep(1);
    }
    assert.is(tx.inFlight, 0, 'every chain came back used, the held ones once the kernel completed them');
    assert.is(q.direct.txDirect, inPlace);
    assert.is(q.direct.txDirectCompleted, inPlace);
    assert.is(q.direct.txBounced, sent.length - inPlace);
    const c = rig.device.queuePairs()[0]!.counters;
    assert.is(c.txFrames, sent.length);
    assert.is(c.txDropRunt, 1);
    assert.is(q.direct.unknownCompletions, 0);
    assert.not.ok(rig.driver.needsReset);
  });
});

test('a transmitted chain is used only after the kernel completed it', async () => {
  await withGuestUmemRig('gumemu', { rx: false }, async ({ peer: b, rig, q }) => {
    const K = 32;
    // The kick posts the chains and kicks the kernel; the completions it produces are read only by the next round.
    assert.is(rig.driver.send(Array.from({ length: K }, (_, i) => makeFrame(i, 64, 4))), K);
    assert.is(q.txInFlight, K, 'all K chains are the kernel\'s');
    assert.is(rig.driver.tx().reclaim(), 0, 'nothing used before any completion was read');
    assert.is(q.direct.txDirectCompleted, 0);
    let used = 0;
    for (let k = 0; k < 100 && used < K; k++) {
      rig.driver.poll();
      used += rig.driver.tx().reclaim();
      // Never more used than completed.
      assert.ok(used <= q.direct.txDirectCompleted, `used ${used} > completed ${q.direct.txDirectCompleted}`);
      if (used < K) await sleep(1);
    }
    assert.is(used, K);
    assert.is(q.txInFlight, 0);
    assert.is((await receive(b.queues[0]!, K, 5000, isTest)).length, K);
  });
});

test('reset with guest buffers on the Fill ring: the kernel writes nothing into guest memory afterwards, and traffic resumes', async () => {
  await withGuestUmemRig('gumemr', { rx: { sizes: [2048] } }, async ({ g, peer: b, rig, q }) => {
    rig.driver.poll();
    assert.ok(q.rxTable.count > 0, 'receive buffers are on the Fill ring');
    const fdBefore = q.socket.fd;
    rig.driver.reset();
    assert.is(q.direct.resets, 1);
    assert.is(q.rxTable.count, 0);
    // The guest reuses its memory: a pattern over all of it, then frames from the peer.
    g.ram.bytes.fill(0xa5, 0, RAM);
    assert.is(await sendAll(b.queues[0]!, Array.from({ length: 200 }, (_, i) => makeFrame(i, 1000, 5))), 0);
    await sleep(200);
    let bad = -1;
    for (let i = 0; i < RAM; i++) {
      if (g.ram.bytes[i] !== 0xa5) {
        bad = i;
        break;
      }
    }
    assert.is(bad, -1, `guest memory changed at offset ${bad} after the reset`);
    assert.ok(q.socket.fd >= 0 && sys.fdIsOpen(q.socket.fd));
    void fdBefore;
    // A fresh driver brings the device up again on the rebound socket.
    assert.ok(rig.driver.bringUp({ features: featureMask(V.EVENT_IDX), rx: { sizes: [2048] } }).ok);
    const back = Array.from({ length: 50 }, (_, i) => makeFrame(i, 300, 6));
    const got = await peerToDriver(rig, b, back);
    assert.is(got.length, 50);
  });
});

test('guest buffers outside registered memory or straddling a region end are refused and counted', async () => {
  await withVeth('gumemo', {}, async (pair) => {
    const g = openGuestSide(pair.a.netns, `af-xdp,id=a,ifname=${pair.a.ifname},guest-umem=on`);
    const q = direct(g.backend);
    try {
      // Region 0: the guest RAM in the area. Region 1: memory the UMEM does not hold.
      const foreign = new ArrayBuffer(1 << 20);
      const mem = new GuestMemory([
        { gpa: RAM_BASE, bytes: new Uint8Array(g.area, 0, RAM) },
        { gpa: 0x1_0000_0000, bytes: new Uint8Array(foreign) },
      ]);
      q.attach(mem);
      assert.is(q.txPost(0, 4096, 64, 1, 1), DIRECT_POSTED);
      assert.is(q.txPost(1, 0, 64, 2, 1), DIRECT_REFUSED, 'memory not in the UMEM');
      assert.is(q.txPost(0, RAM - 10, 64, 3, 1), DIRECT_REFUSED, 'straddles the region end');
      assert.is(q.txPost(0, -1, 64, 4, 1), DIRECT_REFUSED);
      assert.is(q.txPost(7, 0, 64, 5, 1), DIRECT_REFUSED, 'no such region');
      assert.is(q.txPost(0, 0, 4096, 6, 1), DIRECT_REFUSED, 'longer than a chunk');
      assert.is(q.direct.refusedOutside, 5);
      // RX: a buffer at the very start of RAM cannot have its chunk start in front of it: a bounce frame stands in.
      assert.is(q.rxPost(0, 0, 2048, 7, 1), DIRECT_POSTED);
      const e = q.rxTable.find(q.rxTable.addr[0]!);
      assert.ok(e >= 0 && q.rxTable.bounce[e]! >= RAM, 'bounce frame, beyond guest RAM');
      // A buffer whose chunk would cross into the next region (in the area) takes a bounce frame too.
      assert.is(q.rxPost(1, 0, 2048, 8, 1), DIRECT_POSTED);
      assert.ok(q.rxTable.bounce[(e + 1) & (q.rxTable.capacity - 1)]! >= RAM);
      q.txFlush();
    } finally {
      g.close();
    }
  });
});

test('a registration the kernel refuses: guest-umem=auto says so once and uses the copy path; guest-umem=on fails', async () => {
  await withVeth('gumemf', {}, async (pair) => {
    // JS heap memory is not page-aligned: XDP_UMEM_REG refuses it (EINVAL).
    const heap = new ArrayBuffer(RAM + guestUmemTailBytes(1, TEST_TUNING.ringSize) + 8);
    const area = { buffer: heap.slice(8), guestLength: RAM, hugePages: false };
    const { value: auto, lines } = stderrOf(() =>
      inNetns(pair.a.netns, () => AfXdpBackend.open(parseAfXdpOptions(`af-xdp,id=a,ifname=${pair.a.ifname},guest-umem=auto`), TEST_TUNING, { guestRam: area })),
    );
    try {
      const msgs = lines.filter((l) => l.includes('cannot be the UMEM'));
      assert.is(msgs.length, 1, lines.join('\n'));
      assert.ok(msgs[0]!.includes('copy path'));
      assert.is(auto.guestUmemQueues, undefined);
      assert.is(auto.deviceQueues.length, 1);
    } finally {
      auto.close();
    }
    await sleep(50);
    try {
      inNetns(pair.a.netns, () => AfXdpBackend.open(parseAfXdpOptions(`af-xdp,id=a,ifname=${pair.a.ifname},guest-umem=on`), TEST_TUNING, { guestRam: area }));
      assert.unreachable('guest-umem=on must fail');
    } catch (e) {
      assert.instance(e, OptionError);
      assert.match((e as Error).message, /guest-umem=on.*refused/);
    }
  });
});

test('guest-umem unset is the copy path: offered guest RAM, the backend registers its own UMEM and says nothing; xdpvm run maps no bounce tail', async () => {
  await withVeth('gumemd', {}, async (pair) => {
    const { value: g, lines } = stderrOf(() => openGuestSide(pair.a.netns, `af-xdp,id=a,ifname=${pair.a.ifname}`));
    try {
      assert.is(g.backend.guestUmemQueues, undefined, 'guest RAM is not the UMEM');
      assert.is(g.backend.deviceQueues.length, 1);
      assert.is(lines.filter((l) => l.includes('copy path')).length, 0, lines.join('\n'));
    } finally {
      g.close();
    }
  });
  const opts = (spec: string): AfXdpOptions => parseAfXdpOptions(spec);
  const plan = planGuestUmem([opts('af-xdp,id=a,ifname=x'), opts('af-xdp,id=b,ifname=y,guest-umem=auto'), opts('af-xdp,id=c,ifname=z,guest-umem=off')], RAM);
  const ram = new ArrayBuffer(0);
  assert.is(plan.area(0, ram), undefined, 'unset: no area');
  assert.ok(plan.area(1, ram), 'auto: offered');
  assert.is(plan.area(2, ram), undefined, 'off: no area');
  assert.is(plan.tailBytes, guestUmemTailBytes(1, DEFAULT_RING_SIZE), 'bounce frames for the auto netdev only');
});

test('guest-umem option errors', () => {
  assert.throws(() => parseAfXdpOptions('af-xdp,id=a,ifname=x,guest-umem=maybe'), /'guest-umem' must be auto, on or off/);
  assert.is(parseAfXdpOptions('af-xdp,id=a,ifname=x,guest-umem=off').guestUmem, 'off');
  assert.is(parseAfXdpOptions('af-xdp,id=a,ifname=x').guestUmem, undefined);
  assert.throws(() => AfXdpBackend.open(parseAfXdpOptions('af-xdp,id=a,ifname=lo,guest-umem=on')), /guest-umem=on.*cannot give the backend its guest RAM/);
});

test('two queues over one registered guest RAM (XDP_SHARED_UMEM, own Fill rings): each queue receives only into its own buffers and sends its own frames', async () => {
  await withVeth('gumemq', { queues: 4 }, async (pair) => {
    const g = openGuestSide(pair.a.netns, `af-xdp,id=a,ifname=${pair.a.ifname},queues=2,start-queue=1,mode=native,guest-umem=on`, 2);
    const b = openBackend(pair.b.netns, `af-xdp,id=b,ifname=${pair.b.ifname},queues=3,start-queue=1,mode=native`);
    try {
      const qs = g.backend.guestUmemQueues!;
      assert.equal(qs.map((q) => q.queueId), [1, 2]);
      // Queue i posts 64 buffers of 2 KiB from its own part of guest RAM.
      const mem = g.ram.memory;
      for (const [i, q] of qs.entries()) {
        q.attach(mem);
        for (let k = 0; k < 64; k++) assert.is(q.rxPost(0, (i * 64 + k + 1) * 4096, 2048, i * 64 + k, 1), DIRECT_POSTED);
        q.rxPublish();
      }
      for (let i = 0; i < 2; i++) assert.is(await sendAll(b.queues[i]!, Array.from({ length: 40 }, (_, k) => makeFrame(k, 200, 1 + i))), 0);
      await sleep(50);
      for (const [i, q] of qs.entries()) {
        const n = q.rxPeek(64);
        assert.is(n, 40, `queue ${q.queueId} received ${n}`);
        for (let k = 0; k < n; k++) {
          const e = q.rxEntry(k);
          assert.ok(e >= 0);
          const head = q.rxTable.headId[e]!;
          assert.ok(head >= i * 64 && head < (i + 1) * 64, `frame for queue ${q.queueId} landed in a buffer of queue ${q.queueId} only`);
          const at = q.rxData(k);
          assert.is(at, (head + 1) * 4096 + 12, 'the frame sits right behind the header room of the buffer it was posted for');
          assert.is(g.ram.bytes[at + 18], 1 + i);
        }
        q.rxRelease(n);
      }
      // Each queue sends in place from guest RAM on its own queue.
      for (const [i, q] of qs.entries()) {
        for (let k = 0; k < 30; k++) {
          const off = (200 + i * 32 + k) * 4096;
          g.ram.bytes.set(makeFrame(k, 100, 11 + i), off);
          assert.is(q.txPost(0, off, 100, k, 1), DIRECT_POSTED);
        }
        q.txFlush();
      }
      for (let i = 0; i < 2; i++) {
        const got = await receive(b.queues[i]!, 30, 3000, isTest);
        assert.is(got.length, 30);
        assert.ok(got.every((f) => f[18] === 11 + i));
      }
      await sleep(20);
      for (const q of qs) {
        assert.is(q.txReclaim(), 30);
        q.txDoneTaken();
        assert.is(q.txInFlight, 0);
      }
    } finally {
      g.close();
      b.close();
    }
  });
});

test('tear-down after traffic and a reset leaks no fd', async () => {
  const fds = (): number => readdirSync('/proc/self/fd').length;
  await withVeth('gumemt', {}, async (pair) => {
    const before = fds();
    const g = openGuestSide(pair.a.netns, `af-xdp,id=a,ifname=${pair.a.ifname},guest-umem=on`);
    const rig = createNetRig({ backends: g.backend.deviceQueues, ram: g.ram });
    assert.ok(rig.driver.bringUp({ features: featureMask(V.EVENT_IDX), rx: { sizes: [2048] } }).ok);
    rig.driver.poll();
    rig.driver.reset();
    g.close();
    assert.is(fds(), before);
  });
});

test.run();
