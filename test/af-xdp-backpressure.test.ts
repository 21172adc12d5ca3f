// Backpressure: a consumer that takes fewer frames than offered (or none)
// loses nothing; the untaken frames stay on the Rx ring and come first when
// it resumes; every frame is accounted for afterwards.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { frameSeq, makeFrame } from './support/frames';
import { drainTx, receive, sendAll, sleep } from './support/queue-traffic';
import { openBackend, withVeth } from './support/veth-backends';

const N = 400; // below the 512-entry test rings: the kernel itself never has to drop

test('a consumer that refuses for a while, then takes partial batches, gets all frames in order', async () => {
  await withVeth('bp', {}, async (pair) => {
    const a = openBackend(pair.a.netns, `af-xdp,id=a,ifname=${pair.a.ifname}`);
    const b = openBackend(pair.b.netns, `af-xdp,id=b,ifname=${pair.b.ifname}`);
    try {
      const qa = a.queues[0]!;
      const qb = b.queues[0]!;
      await sendAll(qa, Array.from({ length: N }, (_, i) => makeFrame(i, 64 + (i % 200))));
      await drainTx(qa);
      await sleep(20);
      // Refuse: peek and take nothing, several times.
      for (let k = 0; k < 5; k++) {
        assert.ok(qb.rxPeek(64) > 0);
        qb.rxRelease(0);
      }
      assert.is(qb.counters.rxPackets, 0);
      assert.ok(qb.counters.rxDeferred >= 5);
      // Take one frame of each batch offered, for a while.
      const got: Uint8Array[] = [];
      for (let k = 0; k < 10; k++) {
        const n = qb.rxPeek(64);
        assert.ok(n > 0);
        const off = qb.rxOffset(0);
        got.push(qb.rxBuffer.slice(off, off + qb.rxLength(0)));
        qb.rxRelease(1);
      }
      got.push(...(await receive(qb, N - got.length, 5000, (f) => frameSeq(f) >= 0)));
      assert.is(got.length, N);
      got.forEach((f, i) => assert.is(frameSeq(f), i, `frame ${i}`));
      await sleep(20);
      assert.is(qb.rxPeek(64), 0, 'nothing extra');
      qb.rxRelease(0);
      for (const q of [qa, qb]) {
        const acc = q.frameAccounting();
        assert.is(acc.total, q.frameCount, `no leaked frame: ${JSON.stringify(acc)}`);
      }
    } finally {
      a.close();
      b.close();
    }
  });
});

test('Tx backpressure: when frames run out the sender is told to wait, and nothing is dropped', async () => {
  await withVeth('bp-tx', {}, async (pair) => {
    const a = openBackend(pair.a.netns, `af-xdp,id=a,ifname=${pair.a.ifname}`, { frameSize: 4096, frameCount: 64, ringSize: 32 });
    const b = openBackend(pair.b.netns, `af-xdp,id=b,ifname=${pair.b.ifname}`);
    try {
      const qa = a.queues[0]!;
      // Acquire without flushing: the pool and the Tx ring run dry and say TX_BUSY rather than losing frames.
      let acquired = 0;
      for (;;) {
        const off = qa.txAcquire(100);
        if (off < 0) {
          assert.is(off, -2);
          break;
        }
        qa.txBuffer.set(makeFrame(acquired, 100), off);
        qa.txCommit(off, 100);
        acquired++;
      }
      assert.ok(acquired > 0 && acquired <= 64, `acquired ${acquired}`);
      assert.is(qa.counters.txBusy, 1);
      qa.txFlush();
      const got = await receive(b.queues[0]!, acquired, 3000, (f) => frameSeq(f) >= 0);
      assert.is(got.length, acquired);
      await drainTx(qa);
      assert.is(qa.frameAccounting().total, qa.frameCount);
    } finally {
      a.close();
      b.close();
    }
  });
});

test.run();
