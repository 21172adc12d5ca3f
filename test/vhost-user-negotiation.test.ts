// Feature and protocol negotiation (vhost-user.rst "Front-end message
// types"): what GET_FEATURES / GET_PROTOCOL_FEATURES / GET_QUEUE_NUM /
// GET_CONFIG answer, which SET_FEATURES values are refused, and that
// REPLY_ACK is honoured only once negotiated.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { featureBit, NetConfig, NetFeature, VirtioFeature } from 'virtio-spec-types';
import { configPayload, u64Payload } from '../src/vhost-user/message';
import { HeaderFlags, ProtocolFeature, Request, VHOST_USER_F_PROTOCOL_FEATURES } from '../src/vhost-user/protocol';
import { FRONT_FEATURES, VhostUserFrontEnd } from './support/vhost-user-front-end';
import { withVhostUser } from './support/vhost-user-rig';

const has = (f: bigint, bit: number): boolean => (f & featureBit(bit)) !== 0n;

test('one queue pair: features, protocol features, queue count, config, SET_FEATURES checks', async () => {
  await withVhostUser('vun', { config: true }, async (rig) => {
    const f = await VhostUserFrontEnd.connect(rig.socketPath);
    try {
      f.send(Request.SET_OWNER);
      const features = (await f.call(Request.GET_FEATURES)).u64();
      for (const bit of [
        VirtioFeature.VERSION_1, VirtioFeature.INDIRECT_DESC, VirtioFeature.EVENT_IDX, NetFeature.MRG_RXBUF,
        NetFeature.CSUM, NetFeature.HOST_TSO4, NetFeature.HOST_TSO6, VHOST_USER_F_PROTOCOL_FEATURES,
      ])
        assert.ok(has(features, bit), `feature bit ${bit} offered`);
      assert.not.ok(has(features, NetFeature.MQ), 'no MQ with one pair');
      assert.not.ok(has(features, VirtioFeature.RING_PACKED), 'split rings only');
      assert.not.ok(has(features, 26), 'no VHOST_F_LOG_ALL');

      const proto = (await f.call(Request.GET_PROTOCOL_FEATURES)).u64();
      for (const bit of [ProtocolFeature.MQ, ProtocolFeature.REPLY_ACK, ProtocolFeature.CONFIG, ProtocolFeature.RESET_DEVICE])
        assert.ok(has(proto, bit), `protocol feature ${bit} offered`);
      assert.not.ok(has(proto, ProtocolFeature.LOG_SHMFD));
      assert.is((await f.call(Request.GET_QUEUE_NUM)).u64(), 1n);

      // Before SET_PROTOCOL_FEATURES, NEED_REPLY is not honoured: a good message gets no reply...
      f.send(Request.SET_FEATURES, u64Payload(FRONT_FEATURES), [], true);
      assert.is(await f.receive(200), undefined, 'no REPLY_ACK before it is negotiated');
      f.send(Request.SET_PROTOCOL_FEATURES, u64Payload(proto));

      // ... and after it, every NEED_REPLY message is acknowledged.
      assert.is(await f.ack(Request.SET_FEATURES, u64Payload(FRONT_FEATURES)), 0n);
      assert.is(await f.ack(Request.SET_FEATURES, u64Payload(FRONT_FEATURES | featureBit(NetFeature.MQ))), 1n, 'MQ was not offered');
      assert.is(await f.ack(Request.SET_FEATURES, u64Payload(featureBit(NetFeature.MRG_RXBUF))), 1n, 'VERSION_1 is required');
      assert.is(
        await f.ack(Request.SET_FEATURES, u64Payload(featureBit(VirtioFeature.VERSION_1) | featureBit(NetFeature.HOST_TSO4))),
        1n,
        'TSO without CSUM',
      );
      assert.is(await f.ack(Request.SET_PROTOCOL_FEATURES, u64Payload(proto | featureBit(ProtocolFeature.LOG_SHMFD))), 1n);

      // GET_CONFIG: the virtio-net configuration (mac, status, max pairs, mtu).
      const cfg = await f.call(Request.GET_CONFIG, configPayload(0, 0, new Uint8Array(NetConfig.SIZE)));
      const body = cfg.payload.subarray(12);
      assert.is(body.length, NetConfig.SIZE);
      const v = new DataView(body.buffer, body.byteOffset, body.byteLength);
      assert.is(v.getUint16(NetConfig.MAX_VIRTQUEUE_PAIRS, true), 1);
      assert.is(v.getUint16(NetConfig.MTU, true), 1500);
      assert.equal([...body.subarray(0, 6)], [0x02, 0, 0, 0, 0, 0x01]);
      // Out of range: an empty payload says "error" (vhost-user.rst GET_CONFIG).
      const bad = await f.call(Request.GET_CONFIG, configPayload(NetConfig.SIZE - 2, 0, new Uint8Array(8)));
      assert.is(bad.payload.length, 0);
      // The configuration is read-only.
      assert.is(await f.ack(Request.SET_CONFIG, configPayload(0, 0, new Uint8Array(6))), 1n);

      assert.is(await f.ack(Request.SET_OWNER), 0n);
      assert.is(await f.ack(Request.RESET_DEVICE), 0n);
      assert.is(await f.ack(Request.RESET_OWNER), 0n);
      // An ack that went out has the reply flag and version 1.
      f.send(Request.SET_OWNER, new Uint8Array(0), [], true);
      const r = await f.receive();
      assert.ok(r && r.flags === (HeaderFlags.Version | HeaderFlags.Reply) && r.payload.length === 8);
    } finally {
      f.close();
    }
  });
});

test('two queue pairs: MQ offered, GET_QUEUE_NUM says 2, vring indices up to 3', async () => {
  await withVhostUser('vun2', { queues: 2 }, async (rig) => {
    const f = await VhostUserFrontEnd.connect(rig.socketPath);
    try {
      const features = (await f.call(Request.GET_FEATURES)).u64();
      assert.ok(has(features, NetFeature.MQ));
      const proto = (await f.call(Request.GET_PROTOCOL_FEATURES)).u64();
      assert.not.ok(has(proto, ProtocolFeature.CONFIG), 'CONFIG only when asked for (QEMU warns about it)');
      f.send(Request.SET_PROTOCOL_FEATURES, u64Payload(proto));
      assert.is((await f.call(Request.GET_QUEUE_NUM)).u64(), 2n);
      const state = (index: number, num: number): Uint8Array => {
        const b = new Uint8Array(8);
        new DataView(b.buffer).setUint32(0, index, true);
        new DataView(b.buffer).setUint32(4, num, true);
        return b;
      };
      assert.is(await f.ack(Request.SET_VRING_NUM, state(3, 256)), 0n);
      assert.is(await f.ack(Request.SET_VRING_NUM, state(4, 256)), 1n, 'vring 4 does not exist');
    } finally {
      f.close();
    }
  });
});

test.run();
