// MTU over vhost-user (vhost-user.rst VHOST_USER_PROTOCOL_F_NET_MTU): the
// front end owns the configuration, so the server offers VIRTIO_NET_F_MTU
// and the NET_MTU protocol feature, takes QEMU's host_mtu from NET_SET_MTU
// (68..65535, else refused), and its data path drops and counts frames over
// that MTU both ways once the driver negotiated the feature.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { featureBit, featureMask, NetFeature } from 'virtio-spec-types';
import { u64Payload } from '../src/vhost-user/message';
import { ProtocolFeature, Request } from '../src/vhost-user/protocol';
import { frameSeq, frameTag, makeFrame } from './support/frames';
import { receive, sendAll, sleep } from './support/queue-traffic';
import { FRONT_FEATURES, FRONT_PROTOCOL, FrontGuest, VhostUserFrontEnd } from './support/vhost-user-front-end';
import { withVhostUser } from './support/vhost-user-rig';

const PROTOCOL = FRONT_PROTOCOL | featureMask(ProtocolFeature.MTU);

test('MTU and NET_MTU are offered; NET_SET_MTU takes 68..65535, refuses the rest, and only once NET_MTU is negotiated', async () => {
  await withVhostUser('vmtu', {}, async (rig) => {
    const f = await VhostUserFrontEnd.connect(rig.socketPath);
    try {
      f.send(Request.SET_OWNER);
      const features = (await f.call(Request.GET_FEATURES)).u64();
      assert.ok((features & featureBit(NetFeature.MTU)) !== 0n, 'VIRTIO_NET_F_MTU offered');
      const proto = (await f.call(Request.GET_PROTOCOL_FEATURES)).u64();
      assert.ok((proto & featureBit(ProtocolFeature.MTU)) !== 0n, 'NET_MTU offered');
      f.send(Request.SET_PROTOCOL_FEATURES, u64Payload(proto & FRONT_PROTOCOL));
      assert.is(await f.ack(Request.NET_SET_MTU, u64Payload(9000n)), 1n, 'refused before NET_MTU is negotiated');
      f.send(Request.SET_PROTOCOL_FEATURES, u64Payload(proto & PROTOCOL));
      for (const bad of [0n, 67n, 65536n, 1n << 40n]) assert.is(await f.ack(Request.NET_SET_MTU, u64Payload(bad)), 1n, `${bad} refused`);
      for (const ok of [68n, 9000n, 65535n]) assert.is(await f.ack(Request.NET_SET_MTU, u64Payload(ok)), 0n, `${ok} taken`);
      assert.ok(rig.log.some((l) => /refused NET_SET_MTU: .*67 is not in 68\.\.65535/.test(l)), rig.log.join('\n'));
    } finally {
      f.close();
    }
  });
});

test('NET_SET_MTU 1500 with MTU negotiated: frames over 1514 dropped and counted both ways, the rest flows', async () => {
  await withVhostUser('vmtu2', {}, async (rig) => {
    const front = await VhostUserFrontEnd.connect(rig.socketPath);
    const guest = new FrontGuest(front);
    try {
      front.send(Request.SET_OWNER);
      const proto = (await front.call(Request.GET_PROTOCOL_FEATURES)).u64();
      front.send(Request.SET_PROTOCOL_FEATURES, u64Payload(proto & PROTOCOL));
      // QEMU sends it before it starts the rings (virtio_net_vhost_status).
      assert.is(await front.ack(Request.NET_SET_MTU, u64Payload(1500n)), 0n);
      await guest.setUp(FRONT_FEATURES | featureBit(NetFeature.MTU), PROTOCOL);
      const deadline = Date.now() + 5000;
      while (!rig.server.runner.isRunning(0) && Date.now() < deadline) await sleep(5);
      const peerQ = rig.peer.queues[0]!;
      assert.is(guest.transmit([makeFrame(0, 1514, 4), makeFrame(1, 1515, 4), makeFrame(2, 60, 4)]), 3);
      const got = await receive(peerQ, 2, 3000, (fr) => frameSeq(fr) >= 0 && frameTag(fr) === 4);
      assert.equal(got.map(frameSeq), [0, 2]);
      guest.postRx(16);
      await sleep(20);
      await sendAll(peerQ, [makeFrame(3, 1515, 5), makeFrame(4, 1514, 5)]);
      const rx: Uint8Array[] = [];
      for (let k = 0; k < 200 && rx.length < 1; k++) {
        rx.push(...guest.receivedFrames().filter((fr) => frameSeq(fr) >= 0 && frameTag(fr) === 5));
        if (rx.length < 1) await sleep(5);
      }
      assert.equal(rx.map(frameSeq), [4]);
      let c = rig.server.runner.counters(0);
      for (let k = 0; k < 100 && (c?.rxDropOverMtu ?? 0) < 1; k++) {
        await sleep(10);
        c = rig.server.runner.counters(0);
      }
      assert.is(c?.txDropOverMtu, 1, 'the 1515-byte frame from the guest');
      assert.is(c?.rxDropOverMtu, 1, 'the 1515-byte frame from the wire');
    } finally {
      front.close();
      guest.release();
    }
  });
});

test.run();
