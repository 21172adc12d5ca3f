// The UMEM frame size open() picks by itself: 2 KiB while a whole frame of the
// interface's MTU (Ethernet header and a VLAN tag included) fits one, 4 KiB
// above. Full-size frames still cross both ways on the 2 KiB layout.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AfXdpBackend, DEFAULT_TUNING, SMALL_FRAME_SIZE, tuningForMtu } from '../src/backend/af-xdp/af-xdp-backend';
import { parseAfXdpOptions } from '../src/backend/af-xdp/af-xdp-options';
import { inNetns } from '../src/host/netns';
import { frameSeq, makeFrame } from './support/frames';
import { receive, sendAll } from './support/queue-traffic';
import { withVeth } from './support/veth-backends';

/** A backend with the sizes open() chooses (the test helpers pass small ones), serviced from this thread. */
function openDefault(netns: string, spec: string): AfXdpBackend {
  const b = inNetns(netns, () => AfXdpBackend.open(parseAfXdpOptions(spec)));
  void b.queues;
  return b;
}

test('MTU 1774 and below get 2 KiB frames, anything larger the 4 KiB default', () => {
  // 2048 - 256 (XDP_PACKET_HEADROOM) = 1792 bytes = MTU + 14 + 4.
  assert.is(tuningForMtu(1500).frameSize, SMALL_FRAME_SIZE);
  assert.is(tuningForMtu(1774).frameSize, SMALL_FRAME_SIZE);
  assert.is(tuningForMtu(1775).frameSize, DEFAULT_TUNING.frameSize);
  assert.is(tuningForMtu(9000).frameSize, DEFAULT_TUNING.frameSize);
  // Only the frame size changes: as many frames, the same rings.
  assert.is(tuningForMtu(1500).frameCount, DEFAULT_TUNING.frameCount);
  assert.is(tuningForMtu(1500).ringSize, DEFAULT_TUNING.ringSize);
});

test('on a 1500-MTU veth the default backend has 2 KiB frames and full-size frames cross both ways intact', async () => {
  await withVeth('fsz', {}, async (pair) => {
    const a = openDefault(pair.a.netns, `af-xdp,id=a,ifname=${pair.a.ifname}`);
    const b = openDefault(pair.b.netns, `af-xdp,id=b,ifname=${pair.b.ifname}`);
    try {
      assert.is(a.sockets[0]!.config.frameSize, SMALL_FRAME_SIZE);
      assert.is(a.queues[0]!.txSegmentSize, SMALL_FRAME_SIZE);
      for (const [from, to, tag] of [[a, b, 1], [b, a, 2]] as const) {
        const sent = Array.from({ length: 64 }, (_, i) => makeFrame(i, i % 2 ? 1514 : 60 + i * 23, tag));
        assert.is(await sendAll(from.queues[0]!, sent), 0, 'nothing dropped as oversize');
        const got = await receive(to.queues[0]!, sent.length, 5000, (f) => frameSeq(f) !== -1);
        assert.is(got.length, sent.length);
        got.forEach((f, i) => assert.equal(f, sent[i]));
      }
    } finally {
      a.close();
      b.close();
    }
  });
});

test('on a 9000-MTU veth the default backend keeps 4 KiB frames', async () => {
  await withVeth('fszj', { mtu: 9000 }, async (pair) => {
    const a = openDefault(pair.a.netns, `af-xdp,id=a,ifname=${pair.a.ifname}`);
    try {
      assert.is(a.sockets[0]!.config.frameSize, DEFAULT_TUNING.frameSize);
    } finally {
      a.close();
    }
  });
});

test.run();
