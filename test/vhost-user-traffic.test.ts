// Frames flow both ways between a vhost-user front end's rings and a veth
// peer through the server's AF_XDP backend: the front end's TX ring reaches
// the peer, the peer's frames land in the front end's RX ring, used buffers
// are signalled through the call eventfds, and GET_VRING_BASE stops the
// rings and reports where they stopped.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { vringStatePayload } from '../src/vhost-user/message';
import { Request } from '../src/vhost-user/protocol';
import { frameSeq, frameTag, makeFrame } from './support/frames';
import { receive, sendAll, sleep } from './support/queue-traffic';
import { FrontGuest, VhostUserFrontEnd } from './support/vhost-user-front-end';
import { withVhostUser } from './support/vhost-user-rig';
import { sys } from '../src/native/sys';

const N = 100;

async function until(cond: () => boolean, timeoutMs = 5000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) return false;
    await sleep(5);
  }
  return true;
}

test('frames go both ways, call fds fire, GET_VRING_BASE reports the next avail index', async () => {
  await withVhostUser('vut', {}, async (rig) => {
    const front = await VhostUserFrontEnd.connect(rig.socketPath);
    const guest = new FrontGuest(front);
    try {
      await guest.setUp();
      assert.ok(await until(() => rig.server.runner.isRunning(0)), 'pair 0 running after set-up');
      const peerQ = rig.peer.queues[0]!;

      // Front end -> peer.
      const sent = Array.from({ length: N }, (_, i) => makeFrame(i, 60 + i * 10, 7));
      assert.is(guest.transmit(sent), N);
      const got = await receive(peerQ, N, 5000, (f) => frameSeq(f) >= 0 && frameTag(f) === 7);
      assert.is(got.length, N, `peer received ${got.length} of ${N}`);
      got.forEach((f, i) => assert.equal(f, sent[i]));
      let txUsed = 0;
      assert.ok(await until(() => (txUsed += guest.tx.pollUsed().length) >= N), `TX buffers used: ${txUsed}`);
      assert.ok(await until(() => sys.eventfdRead(guest.call.tx) > 0), 'TX call eventfd signalled');

      // Peer -> front end.
      guest.postRx(128);
      await sleep(20);
      await sendAll(peerQ, Array.from({ length: N }, (_, i) => makeFrame(i, 100 + i, 9)));
      const rx: Uint8Array[] = [];
      assert.ok(
        await until(() => {
          rx.push(...guest.receivedFrames().filter((f) => frameSeq(f) >= 0 && frameTag(f) === 9));
          return rx.length >= N;
        }),
        `front end received ${rx.length} of ${N}`,
      );
      rx.forEach((f, i) => assert.equal(f, makeFrame(i, 100 + i, 9)));
      assert.ok(await until(() => sys.eventfdRead(guest.call.rx) > 0), 'RX call eventfd signalled');

      // GET_VRING_BASE: the TX ring consumed exactly N buffers; RX at least N (stray frames may have used more).
      const txBase = await front.call(Request.GET_VRING_BASE, vringStatePayload(1, 0));
      const tv = new DataView(txBase.payload.buffer, txBase.payload.byteOffset);
      assert.is(tv.getUint32(0, true), 1);
      assert.is(tv.getUint32(4, true), N);
      assert.not.ok(rig.server.runner.isRunning(0), 'GET_VRING_BASE stopped the pair');
      const rxBase = await front.call(Request.GET_VRING_BASE, vringStatePayload(0, 0));
      const rv = new DataView(rxBase.payload.buffer, rxBase.payload.byteOffset);
      assert.is(rv.getUint32(0, true), 0);
      const rxIdx = rv.getUint32(4, true);
      assert.ok(rxIdx >= N && rxIdx <= 128, `rx base ${rxIdx}`);
      assert.is(rxIdx, guest.rx.usedIdx(), 'rx base = used idx (nothing in flight)');

      // Restart from those bases (what QEMU does after a stop): traffic continues.
      await guest.restartRings(N, rxIdx);
      assert.ok(await until(() => rig.server.runner.isRunning(0)), 'pair 0 running again');
      const more = Array.from({ length: 20 }, (_, i) => makeFrame(1000 + i, 80, 11));
      assert.is(guest.transmit(more, N), 20);
      const got2 = await receive(peerQ, 20, 5000, (f) => frameSeq(f) >= 0 && frameTag(f) === 11);
      assert.is(got2.length, 20, 'frames after the restart');
      // Live counters are published before the worker sleeps, and add up over sessions.
      assert.ok(await until(() => rig.server.runner.counters(0)!.txFrames >= N + 20), JSON.stringify(rig.server.runner.counters(0)));
      assert.ok(rig.server.runner.counters(0)!.rxFrames >= N);
    } finally {
      front.close();
      await until(() => rig.server.connection === undefined);
      guest.release();
    }
  });
});

test.run();
