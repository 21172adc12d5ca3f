// queues=2,start-queue=1 on a 4-queue veth: one socket per device queue,
// each queue getting its own traffic in both directions.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { frameSeq, frameTag, makeFrame } from './support/frames';
import { receive, sendAll, sleep } from './support/queue-traffic';
import { openBackend, withVeth } from './support/veth-backends';

const N = 100;

// A socket bound to queue q transmits on tx queue q. veth hands the frame to
// the peer on rx queue q when the peer runs XDP in driver mode, but in
// generic (skb) mode the kernel reads the recorded queue as queue_mapping-1,
// so it arrives on rx queue q-1 (measured on Linux 6.18). The peer therefore
// sends from queue q+1 to reach our queue q in skb mode.
const SKB_QUEUE_SHIFT = { native: 0, skb: 1 } as const;

for (const mode of ['native', 'skb'] as const) {
  test(`each of queues 1 and 2 gets its own traffic (${mode} mode)`, async () => {
    await withVeth('mq', { queues: 4 }, async (pair) => {
      const a = openBackend(pair.a.netns, `af-xdp,id=a,ifname=${pair.a.ifname},queues=2,start-queue=1,mode=${mode}`);
      // The peer receives in native mode on queues 1..2 and sends from 1+shift..2+shift.
      const b = openBackend(pair.b.netns, `af-xdp,id=b,ifname=${pair.b.ifname},queues=3,start-queue=1,mode=native`);
      try {
        assert.equal(a.queues.map((q) => q.queueId), [1, 2]);
        assert.is(a.mode, mode);
        const shift = SKB_QUEUE_SHIFT[mode];
        // peer -> us
        for (let i = 0; i < 2; i++) await sendAll(b.queues[i + shift]!, Array.from({ length: N }, (_, k) => makeFrame(k, 80, 1 + i)));
        await sleep(20);
        for (const [i, q] of a.queues.entries()) {
          const got = await receive(q, N, 3000, (f) => frameSeq(f) >= 0);
          assert.is(got.length, N, `queue ${q.queueId} received ${got.length}`);
          assert.ok(got.every((f) => frameTag(f) === 1 + i), `queue ${q.queueId} got only its own traffic`);
        }
        // us -> peer
        for (const [i, q] of a.queues.entries()) await sendAll(q, Array.from({ length: N }, (_, k) => makeFrame(k, 80, 11 + i)));
        await sleep(20);
        for (let i = 0; i < 2; i++) {
          const got = await receive(b.queues[i]!, N, 3000, (f) => frameSeq(f) >= 0);
          assert.is(got.length, N);
          assert.ok(got.every((f) => frameTag(f) === 11 + i), `our queue ${1 + i} sent on its own queue`);
        }
      } finally {
        a.close();
        b.close();
      }
    });
  });
}

test.run();
