// MTU 9000 end to end in this process: test driver -> virtio-pci ->
// virtio-net (MTU 9000 negotiated) -> AF_XDP multi-buffer socket on a veth
// pair -> AF_XDP socket on the peer, and back. 9014-byte frames (and sizes
// around the UMEM frame boundaries) cross both ways intact, counted at both
// ends: into mergeable receive buffers and into big (one-chain) buffers;
// a frame from the wire above the MTU is dropped and counted.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { NetFeature as N, VirtioFeature as V, featureMask } from 'virtio-spec-types';
import { createNetRig, GuestRam, type ReceivedFrame } from '../src/test-driver';
import { driverToPeer, peerToDriver } from './support/driver-peer';
import { frameSeq, makeFrame } from './support/frames';
import { sendAll, sleep } from './support/queue-traffic';
import { openBackend, withVeth } from './support/veth-backends';

const SIZES = [60, 1514, 3839, 3840, 3841, 4096, 4097, 8192, 8193, 9014];
const N_FRAMES = 60;
const isTest = (f: Uint8Array): boolean => frameSeq(f) !== -1;

const cases = [
  { mode: 'skb', mergeable: true, packed: false },
  { mode: 'native', mergeable: true, packed: true },
  { mode: 'skb', mergeable: false, packed: true },
  { mode: 'native', mergeable: false, packed: false },
] as const;

for (const c of cases) {
  const rxKind = c.mergeable ? 'mergeable 1526-byte buffers' : 'big buffers (one 3 x 4 KiB chain a frame)';
  test(`${c.mode} mode, ${c.packed ? 'packed' : 'split'}, ${rxKind}: MTU 9000 frames both ways, counted at both ends`, async () => {
    await withVeth(`jumbo${c.mode[0]}`, { mtu: 9000 }, async (pair) => {
      const a = openBackend(pair.a.netns, `af-xdp,id=a,ifname=${pair.a.ifname},mode=${c.mode}`);
      const b = openBackend(pair.b.netns, `af-xdp,id=b,ifname=${pair.b.ifname},mode=${c.mode}`);
      try {
        assert.ok(a.multiBuffer && b.multiBuffer);
        const rig = createNetRig({ backends: [a.queues[0]!], mtu: a.ifMtu, ram: new GuestRam(64 << 20) });
        const { driver } = rig;
        const features = featureMask(N.MTU, V.EVENT_IDX, V.INDIRECT_DESC, ...(c.mergeable ? [N.MRG_RXBUF] : []), ...(c.packed ? [V.RING_PACKED] : []));
        const rx = c.mergeable ? { count: 200 } : { sizes: [4096, 4096, 4096], count: 60 };
        assert.ok(driver.bringUp({ features, queueSize: 256, rx }).ok);
        assert.is(driver.mtu, 9000);
        const peer = b.queues[0]!;
        const counters = rig.device.queuePairs()[0]!.counters;

        // Driver -> peer.
        const out = Array.from({ length: N_FRAMES }, (_, i) => makeFrame(i, SIZES[i % SIZES.length]!, 1));
        const atPeer = await driverToPeer(driver, peer, out, 20);
        assert.is(atPeer.length, N_FRAMES, `peer received ${atPeer.length} of ${N_FRAMES}`);
        atPeer.forEach((f, i) => assert.equal(f, out[i], `frame ${i} (${out[i]!.length} bytes) intact at the peer`));
        assert.is(counters.txFrames, N_FRAMES);
        assert.is(a.queues[0]!.counters.txMultiBuffer, out.filter((f) => f.length > 4096).length, 'sent as chains');
        assert.is(peer.counters.rxMultiBuffer, out.filter((f) => f.length > 3840).length, 'received as chains at the peer');

        // Peer -> driver, then one frame over the MTU.
        const back = Array.from({ length: N_FRAMES }, (_, i) => makeFrame(i, SIZES[(i + 3) % SIZES.length]!, 2));
        const atDriver = await peerToDriver(driver, peer, back, 20);
        assert.is(atDriver.length, N_FRAMES, `driver received ${atDriver.length} of ${N_FRAMES}`);
        atDriver.forEach((g, i) => {
          assert.equal(g.frame, back[i], `frame ${i} (${back[i]!.length} bytes) intact in the guest's buffers`);
          if (c.mergeable) assert.is(g.header.numBuffers, Math.ceil((12 + back[i]!.length) / 1526));
          else assert.is(g.ids.length, 1, 'one big chain a frame');
        });
        assert.is(a.queues[0]!.counters.rxMultiBuffer, back.filter((f) => f.length > 3840).length);
        // 9018 bytes untagged: 4 over what MTU 9000 allows. The veth forwards it (its limit leaves room for a tag); the device must not pass it on.
        assert.is(await sendAll(peer, [makeFrame(999, 9018, 3), makeFrame(1000, 100, 3)]), 0);
        const tail: ReceivedFrame[] = [];
        for (let k = 0; k < 200 && tail.length === 0; k++) {
          driver.poll();
          tail.push(...driver.receive().filter((g) => isTest(g.frame)));
          if (tail.length === 0) await sleep(2);
        }
        assert.equal(tail.map((g) => frameSeq(g.frame)), [1000]);
        assert.is(counters.rxDropOverMtu, 1);
        assert.equal(driver.rx().problems, []);
        assert.not.ok(driver.needsReset);
        assert.is(rig.vpci.deviceErrors, 0);
      } finally {
        a.close();
        b.close();
      }
    });
  });
}

test.run();
