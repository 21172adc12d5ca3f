// Without multi-buffer a frame larger than a UMEM frame cannot be sent: it
// is dropped and counted, and the frames after it flow. (With it, the limit
// is the longest chain: af-xdp-multi-buffer*.test.ts.)
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { TX_OVERSIZE } from '../src/backend/net-backend';
import { frameSeq, makeFrame } from './support/frames';
import { drainTx, receive, sendAll } from './support/queue-traffic';
import { openBackend, withVeth } from './support/veth-backends';

test('without multi-buffer, oversize frames are dropped and counted; traffic after them flows', async () => {
  await withVeth('big', {}, async (pair) => {
    const a = openBackend(pair.a.netns, `af-xdp,id=a,ifname=${pair.a.ifname},multi-buffer=off`);
    const b = openBackend(pair.b.netns, `af-xdp,id=b,ifname=${pair.b.ifname}`);
    try {
      const qa = a.queues[0]!;
      assert.is(qa.txAcquire(qa.maxFrameSize + 1), TX_OVERSIZE);
      const frames = Array.from({ length: 60 }, (_, i) => makeFrame(i, i % 10 === 5 ? 9000 : 200));
      const dropped = await sendAll(qa, frames);
      assert.is(dropped, 6);
      assert.is(qa.counters.txDropOversize, 7);
      const got = await receive(b.queues[0]!, 54, 3000, (f) => frameSeq(f) >= 0);
      assert.equal(got.map(frameSeq), frames.map((_, i) => i).filter((i) => i % 10 !== 5));
      await drainTx(qa);
      assert.is(qa.frameAccounting().total, qa.frameCount, 'the dropped frames took no UMEM frame with them');
    } finally {
      a.close();
      b.close();
    }
  });
});

test.run();
