// Two queue pairs (VIRTIO_NET_F_MQ, queues=2): each pair gets its own I/O
// worker on its own AF_XDP socket; both pairs carry traffic; a pair whose
// rings are disabled (SET_VRING_ENABLE 0) stops while the other keeps
// running; without MQ negotiated only the first pair runs.
import { featureBit, NetFeature } from 'virtio-spec-types';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { vringStatePayload } from '../src/vhost-user/message';
import { Request } from '../src/vhost-user/protocol';
import { frameSeq, frameTag, makeFrame } from './support/frames';
import { receive, sleep } from './support/queue-traffic';
import { FRONT_FEATURES, FrontGuest, VhostUserFrontEnd } from './support/vhost-user-front-end';
import { withVhostUser, type VhostUserRig } from './support/vhost-user-rig';

async function until(cond: () => boolean, timeoutMs = 5000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) return false;
    await sleep(5);
  }
  return true;
}

/** Frames with `tag` from either of the peer's queues. */
async function peerReceives(rig: VhostUserRig, count: number, tag: number, timeoutMs = 5000): Promise<number> {
  let got = 0;
  const deadline = Date.now() + timeoutMs;
  while (got < count && Date.now() < deadline) {
    for (const q of rig.peer.queues) got += (await receive(q, count - got, 50, (f) => frameSeq(f) >= 0 && frameTag(f) === tag)).length;
  }
  return got;
}

test('MQ: both pairs run and carry traffic; disabling one pair stops only that pair', async () => {
  await withVhostUser('vmq', { queues: 2 }, async (rig) => {
    const f = await VhostUserFrontEnd.connect(rig.socketPath);
    const g = new FrontGuest(f, 8 << 20, 256, true, 2);
    try {
      await g.setUp(FRONT_FEATURES | featureBit(NetFeature.MQ));
      assert.ok(await until(() => rig.server.runner.isRunning(0) && rig.server.runner.isRunning(1)), 'both pairs running');
      for (const p of [0, 1]) {
        const frames = Array.from({ length: 30 }, (_, i) => makeFrame(i, 80, 20 + p));
        assert.is(g.transmit(frames, 0, p), 30);
        assert.is(await peerReceives(rig, 30, 20 + p), 30, `pair ${p}'s frames reached the peer`);
      }
      assert.ok(await until(() => (rig.server.runner.counters(1)?.txFrames ?? 0) >= 30), 'pair 1 counted its own frames');

      // Disable pair 1's rings: its worker stops, pair 0 goes on.
      assert.is(await f.ack(Request.SET_VRING_ENABLE, vringStatePayload(2, 0)), 0n);
      assert.is(await f.ack(Request.SET_VRING_ENABLE, vringStatePayload(3, 0)), 0n);
      assert.not.ok(rig.server.runner.isRunning(1), 'pair 1 stopped');
      assert.ok(rig.server.runner.isRunning(0), 'pair 0 still running');
      const more = Array.from({ length: 10 }, (_, i) => makeFrame(100 + i, 80, 30));
      g.transmit(more, 30, 0);
      assert.is(await peerReceives(rig, 10, 30), 10);
      // The disabled pair's next buffers wait in its ring; re-enabled, it resumes where it stopped.
      g.transmit(Array.from({ length: 5 }, (_, i) => makeFrame(200 + i, 80, 31)), 30, 1);
      await sleep(50);
      assert.is(await peerReceives(rig, 5, 31, 300), 0, 'nothing from a disabled pair');
      assert.is(await f.ack(Request.SET_VRING_ENABLE, vringStatePayload(2, 1)), 0n);
      assert.is(await f.ack(Request.SET_VRING_ENABLE, vringStatePayload(3, 1)), 0n);
      assert.ok(await until(() => rig.server.runner.isRunning(1)));
      // Restarted, it takes the buffers already waiting without a new kick (the spec's "SHOULD NOT expect a kick").
      assert.is(await peerReceives(rig, 5, 31), 5, 'pair 1 resumed');
      const base = await f.call(Request.GET_VRING_BASE, vringStatePayload(3, 0));
      assert.is(new DataView(base.payload.buffer, base.payload.byteOffset).getUint32(4, true), 35);
    } finally {
      f.close();
      await until(() => rig.server.connection === undefined);
      g.release();
    }
  });
});

test('without MQ negotiated only the first pair runs', async () => {
  await withVhostUser('vmq1', { queues: 2 }, async (rig) => {
    const f = await VhostUserFrontEnd.connect(rig.socketPath);
    const g = new FrontGuest(f, 8 << 20, 256, true, 2);
    try {
      await g.setUp(FRONT_FEATURES);
      assert.ok(await until(() => rig.server.runner.isRunning(0)));
      await sleep(50);
      assert.not.ok(rig.server.runner.isRunning(1));
    } finally {
      f.close();
      await until(() => rig.server.connection === undefined);
      g.release();
    }
  });
});

test.run();
