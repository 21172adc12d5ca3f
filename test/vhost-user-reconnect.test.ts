// A front end that vanishes mid-traffic (no GET_VRING_BASE, socket just
// closed) must not hurt the server: its workers stop, its memory is
// unmapped and its fds closed, and the next front end gets the same backend
// with traffic flowing again. Every UMEM frame stays accounted for (the
// socket's AfXdpQueue lives in the persistent worker, so re-priming never
// posts a frame twice), the fd count returns to where it was, and no XDP
// program is left once the server and its backend are closed.
import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { vringStatePayload } from '../src/vhost-user/message';
import { Request } from '../src/vhost-user/protocol';
import { VhostUserServer } from '../src/vhost-user/server';
import { openFds } from './support/fd-count';
import { frameSeq, frameTag, makeFrame } from './support/frames';
import { receive, sendAll, sleep } from './support/queue-traffic';
import { openBackend, openUnservicedBackend, withVeth } from './support/veth-backends';
import { FrontGuest, VhostUserFrontEnd } from './support/vhost-user-front-end';
import { socketPathFor, xdpAttached } from './support/vhost-user-rig';

async function until(cond: () => boolean, timeoutMs = 5000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) return false;
    await sleep(5);
  }
  return true;
}

/** Mappings of this process backed by memfd `name`. */
function mappingsOf(name: string): number {
  return readFileSync('/proc/self/maps', 'utf8')
    .split('\n')
    .filter((l) => l.includes(`/memfd:${name}`)).length;
}

test('a disconnect mid-traffic, then a reconnect: traffic again, frames accounted, no fd growth, no program left', async () => {
  await withVeth('vur', {}, async (pair) => {
    const backend = openUnservicedBackend(pair.a.netns, `af-xdp,id=a,ifname=${pair.a.ifname}`);
    const peer = openBackend(pair.b.netns, `af-xdp,id=b,ifname=${pair.b.ifname}`);
    const peerQ = peer.queues[0]!;
    const socketPath = socketPathFor('vur');
    const log: string[] = [];
    const fdsBeforeServer = openFds();
    const server = VhostUserServer.listen({ socketPath, backend, spinRounds: 200, log: (l) => void log.push(l) });
    let fdsAfterFirst = -1;
    let fdsAfterServer = -1;
    try {
      // ---- first front end: traffic both ways, then it vanishes mid-stream.
      const f1 = await VhostUserFrontEnd.connect(socketPath);
      const g1 = new FrontGuest(f1);
      await g1.setUp();
      assert.ok(await until(() => server.runner.isRunning(0)), 'first session running');
      g1.postRx(256);
      // Keep the peer sending while the front end transmits a full ring.
      let peerSending = true;
      const peerLoop = (async () => {
        let seq = 0;
        while (peerSending) {
          await sendAll(peerQ, Array.from({ length: 64 }, () => makeFrame(seq++, 200, 1)));
          await sleep(1);
        }
      })();
      const burst = Array.from({ length: 256 }, (_, i) => makeFrame(i, 300, 2));
      g1.transmit(burst);
      await sleep(2);
      f1.close(); // no GET_VRING_BASE, no goodbye
      assert.ok(await until(() => server.connection === undefined), 'server noticed the disconnect');
      peerSending = false;
      await peerLoop;
      assert.not.ok(server.runner.isRunning(0), 'the pair stopped with its front end');
      g1.release();
      assert.is(mappingsOf('vhost-user-test-guest'), 0, "the first guest's memory is unmapped by the server too");
      fdsAfterFirst = openFds();

      // ---- second front end: the same backend serves it.
      const f2 = await VhostUserFrontEnd.connect(socketPath);
      const g2 = new FrontGuest(f2);
      await g2.setUp();
      assert.ok(await until(() => server.runner.isRunning(0)), 'second session running');
      const sent = Array.from({ length: 100 }, (_, i) => makeFrame(i, 64 + i, 3));
      assert.is(g2.transmit(sent), 100);
      const got = await receive(peerQ, 100, 5000, (f) => frameSeq(f) >= 0 && frameTag(f) === 3);
      assert.is(got.length, 100, `peer received ${got.length} after the reconnect`);
      got.forEach((f, i) => assert.equal(f, sent[i]));
      g2.postRx(128);
      await sleep(20);
      await sendAll(peerQ, Array.from({ length: 100 }, (_, i) => makeFrame(i, 90, 4)));
      const rx: Uint8Array[] = [];
      assert.ok(
        await until(() => {
          rx.push(...g2.receivedFrames().filter((f) => frameSeq(f) >= 0 && frameTag(f) === 4));
          return rx.length >= 100;
        }),
        `front end received ${rx.length} after the reconnect`,
      );
      // A clean goodbye this time.
      await f2.call(Request.GET_VRING_BASE, vringStatePayload(0, 0));
      await f2.call(Request.GET_VRING_BASE, vringStatePayload(1, 0));
      f2.close();
      assert.ok(await until(() => server.connection === undefined), 'second connection closed');
      g2.release();
      assert.is(mappingsOf('vhost-user-test-guest'), 0);
      assert.is(openFds(), fdsAfterFirst, 'no fd growth from one connection to the next');

      // ---- every frame is somewhere: pool, Fill, Rx, Tx or Completion ring.
      const settled = await until(() => {
        const a = server.frameAccounting(0);
        return a !== undefined && a.total === a.frameCount && a.tx === 0;
      }, 3000);
      assert.ok(settled, `frame accounting ${JSON.stringify(server.frameAccounting(0))}`);
      assert.is(server.history.length, 2);
    } finally {
      await server.close();
      fdsAfterServer = openFds();
      const a = server.frameAccounting(0);
      assert.ok(a && a.total === a.frameCount, `after close: ${JSON.stringify(a)}`);
      backend.close();
      peer.close();
    }
    assert.is(fdsAfterServer, fdsBeforeServer, 'the server released every fd it opened');
    assert.not.ok(xdpAttached(pair.a.netns, pair.a.ifname), 'no XDP program left on the interface');
  });
});

test.run();
