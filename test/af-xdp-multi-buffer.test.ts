// AF_XDP multi-buffer on a veth pair with MTU 9000, in both attach modes:
// frames up to 9014 bytes cross both ways as descriptor chains, counted at
// both ends, contents intact, every UMEM frame back. Where multi-buffer is
// off or refused the backend says so in one line at open and keeps dropping
// and counting what does not fit one UMEM frame.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { TX_OVERSIZE } from '../src/backend/net-backend';
import { AfXdpBackend } from '../src/backend/af-xdp/af-xdp-backend';
import { parseAfXdpOptions } from '../src/backend/af-xdp/af-xdp-options';
import { inNetns } from '../src/host/netns';
import { xsk } from '../src/native/xsk';
import { frameSeq, makeFrame } from './support/frames';
import { drainTx, receive, sendAll, sleep } from './support/queue-traffic';
import { openBackend, TEST_TUNING, withVeth } from './support/veth-backends';
import { stderrOf } from './support/stderr-capture';

const SIZES = [60, 1514, 3840, 3841, 4096, 4097, 8192, 8193, 9014];

for (const mode of ['skb', 'native'] as const) {
  test(`${mode} mode, MTU 9000: frames up to 9014 bytes cross both ways as descriptor chains, counted at both ends`, async () => {
    await withVeth(`mb${mode[0]}`, { mtu: 9000 }, async (pair) => {
      const { value: [a, b], lines } = stderrOf(() => [
        openBackend(pair.a.netns, `af-xdp,id=a,ifname=${pair.a.ifname},mode=${mode}`),
        openBackend(pair.b.netns, `af-xdp,id=b,ifname=${pair.b.ifname},mode=${mode}`),
      ]);
      try {
        assert.equal(lines, [], 'nothing to say when multi-buffer is in force');
        for (const be of [a!, b!]) {
          assert.is(be.mode, mode);
          assert.ok(be.multiBuffer, 'bound with XDP_USE_SG');
          assert.is(be.ifMtu, 9000);
        }
        for (const [from, to] of [[a!, b!], [b!, a!]] as const) {
          const tx = from.queues[0]!;
          const rx = to.queues[0]!;
          const frames = Array.from({ length: 90 }, (_, i) => makeFrame(i, SIZES[i % SIZES.length]!));
          const before = { tx: { ...tx.counters }, rx: { ...rx.counters } };
          assert.is(await sendAll(tx, frames), 0, 'nothing dropped');
          const got = await receive(rx, frames.length, 5000, (f) => frameSeq(f) !== -1);
          assert.equal(got.map(frameSeq), frames.map((_, i) => i), 'every frame, in order, its pattern intact');
          assert.equal(got.map((f) => f.length), frames.map((f) => f.length));
          const chainsSent = frames.filter((f) => f.length > 4096).length;
          const chainsReceived = frames.filter((f) => f.length > 4096 - 256).length;
          assert.is(tx.counters.txPackets - before.tx.txPackets, frames.length, 'sender: frames counted as frames');
          assert.is(tx.counters.txMultiBuffer - before.tx.txMultiBuffer, chainsSent);
          assert.is(rx.counters.rxPackets - before.rx.rxPackets, frames.length, 'receiver: every frame');
          assert.is(rx.counters.rxMultiBuffer - before.rx.rxMultiBuffer, chainsReceived);
          await drainTx(tx);
          assert.is(tx.frameAccounting().total, tx.frameCount, 'every frame of every chain came back');
          assert.is(rx.frameAccounting().total, rx.frameCount);
          const st = to.statistics(0)!;
          assert.is(st.rxDropped, 0, 'the kernel dropped nothing');
        }
      } finally {
        a!.close();
        b!.close();
      }
    });
  });
}

test('multi-buffer=off at MTU 9000 says so once at open and keeps dropping and counting what one UMEM frame cannot hold', async () => {
  await withVeth('mboff', { mtu: 9000, queues: 2 }, async (pair) => {
    const { value: a, lines } = stderrOf(() => openBackend(pair.a.netns, `af-xdp,id=a,ifname=${pair.a.ifname},mode=skb,queues=2,multi-buffer=off`));
    const b = openBackend(pair.b.netns, `af-xdp,id=b,ifname=${pair.b.ifname},mode=skb,queues=2`);
    try {
      assert.is(lines.length, 1, `one line for the backend, not one per queue: ${JSON.stringify(lines)}`);
      assert.match(lines[0]!, /af-xdp: a: no multi-buffer on xv-a \(multi-buffer=off\): frames over 3840 bytes received or 4096 bytes sent are dropped and counted \(MTU 9000\)/);
      assert.not.ok(a.multiBuffer);
      const qa = a.queues[0]!;
      assert.is(qa.txAcquire(4097), TX_OVERSIZE);
      assert.is(qa.counters.txDropOversize, 1);
      // From the peer (multi-buffer there): the jumbo frame is dropped by the kernel, counted in XDP_STATISTICS.
      const qb = b.queues[0]!;
      assert.is(await sendAll(qb, [makeFrame(1, 9000), makeFrame(2, 1000)]), 0);
      const got = await receive(qa, 1, 3000, (f) => frameSeq(f) >= 0);
      assert.equal(got.map(frameSeq), [2]);
      await sleep(50);
      assert.is(a.statistics(0)!.rxDropped, 1, 'the 9000-byte frame, dropped and counted by the kernel');
    } finally {
      a.close();
      b.close();
    }
  });
});

test('a kernel without XDP_USE_SG (simulated): auto says so once and carries single-buffer frames as before; on fails naming the option', async () => {
  await withVeth('mbno', { mtu: 9000, queues: 2 }, async (pair) => {
    const tuning = { ...TEST_TUNING, simulateNoSg: true };
    const { value: a, lines } = stderrOf(() => openBackend(pair.a.netns, `af-xdp,id=a,ifname=${pair.a.ifname},mode=skb,queues=2`, tuning));
    const b = openBackend(pair.b.netns, `af-xdp,id=b,ifname=${pair.b.ifname},mode=skb,queues=2`);
    try {
      assert.is(lines.length, 1, JSON.stringify(lines));
      assert.match(lines[0]!, /no multi-buffer on xv-a \(the kernel refuses XDP_USE_SG \(EINVAL; Linux >= 6\.6 has it\)\)/);
      assert.not.ok(a.multiBuffer);
      const qa = a.queues[0]!;
      const frames = [makeFrame(0, 1514), makeFrame(1, 4097), makeFrame(2, 4096)];
      assert.is(await sendAll(qa, frames), 1, 'the frame over one UMEM frame is dropped');
      assert.is(qa.counters.txDropOversize, 1);
      const got = await receive(b.queues[0]!, 2, 3000, (f) => frameSeq(f) >= 0);
      assert.equal(got.map(frameSeq), [0, 2]);
      await drainTx(qa);
      assert.is(qa.frameAccounting().total, qa.frameCount);
    } finally {
      a.close();
      b.close();
    }
    const spec = parseAfXdpOptions(`af-xdp,id=a,ifname=${pair.a.ifname},mode=skb,multi-buffer=on`);
    assert.throws(
      () => inNetns(pair.a.netns, () => AfXdpBackend.open(spec, tuning)),
      /queue 0: 'multi-buffer=on' but the kernel refuses XDP_USE_SG \(EINVAL/,
    );
    // Nothing left behind: the program went with the failed open, a new backend attaches at once.
    const st = inNetns(pair.a.netns, () => xsk.xdpQuery(xsk.ifNameToIndex(pair.a.ifname)));
    assert.is(st.attached, 0, 'no XDP program left attached');
  });
});

test('at MTU 1500 a backend without multi-buffer has nothing to say', async () => {
  await withVeth('mb15', {}, async (pair) => {
    const { value: a, lines } = stderrOf(() => openBackend(pair.a.netns, `af-xdp,id=a,ifname=${pair.a.ifname},multi-buffer=off`));
    try {
      assert.equal(lines, []);
      assert.is(a.ifMtu, 1500);
      assert.not.ok(a.multiBuffer);
    } finally {
      a.close();
    }
  });
});

test('multi-buffer= option: auto, on, off; anything else is an error naming it', () => {
  assert.is(parseAfXdpOptions('af-xdp,id=a,ifname=x').multiBuffer, undefined);
  for (const v of ['auto', 'on', 'off'] as const) assert.is(parseAfXdpOptions(`af-xdp,id=a,ifname=x,multi-buffer=${v}`).multiBuffer, v);
  assert.throws(() => parseAfXdpOptions('af-xdp,id=a,ifname=x,multi-buffer=yes'), /'multi-buffer' must be auto, on or off \(got 'yes'\)/);
});

test.run();
