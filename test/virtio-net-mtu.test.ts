// VIRTIO_NET_F_MTU (§5.1.3, §5.1.4): the device offers its MTU in the
// configuration space; once the driver negotiated it, frames above MTU +
// the Ethernet header (+ 4 for an 802.1Q tag) are dropped and counted both
// ways (§5.1.4.1 for receive, §5.1.4.2 for transmit, TSO per segment). Also
// the host_mtu= option of -device virtio-net-pci, spelled as QEMU's.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { NetConfig, NetFeature as N, NetGsoType, NetHdrFlags, NetMtu, featureMask, hasFeature } from 'virtio-spec-types';
import { createNetRig, ipFrame, patternPayload, TEST_MAC } from '../src/test-driver';
import { LoopbackQueue } from '../src/backend/loopback/loopback-queue';
import { VirtioNetDevice } from '../src/virtio/net/virtio-net-device';
import { parseRunOptions, RunOptionError } from '../src/vmm/run-options';
import { deviceMtu } from '../src/vmm/net/virtio-net-pci';
import { makeFrame, frameSeq } from './support/frames';

/** A test frame with an 802.1Q tag (TPID 0x8100, VID 5) in front of the test ethertype. */
function tagged(seq: number, length: number): Uint8Array {
  const inner = makeFrame(seq, length - 4);
  const f = new Uint8Array(length);
  f.set(inner.subarray(0, 12), 0);
  f.set([0x81, 0x00, 0x00, 0x05], 12);
  f.set(inner.subarray(12), 16);
  return f;
}

test('MTU is offered; mtu (config offset 10) reads the device value, 1500 by default; values outside 68..65535 are refused', () => {
  assert.is(NetConfig.MTU, 10);
  const d = createNetRig().driver;
  assert.ok(hasFeature(d.deviceFeatures(), N.MTU));
  assert.is(d.mtu, 1500);
  const j = createNetRig({ mtu: 9000 }).driver;
  assert.ok(j.bringUp({ features: featureMask(N.MTU) }).ok);
  assert.ok(j.has(N.MTU));
  assert.is(j.mtu, 9000);
  assert.is(j.readConfig(NetConfig.MTU, 2), 9000);
  for (const bad of [NetMtu.MIN - 1, NetMtu.MAX + 1, 1500.5])
    assert.throws(() => new VirtioNetDevice({ backends: [new LoopbackQueue()], mac: TEST_MAC, mtu: bad }), /virtio-net: mtu .* is not in 68\.\.65535/);
  for (const ok of [NetMtu.MIN, NetMtu.MAX]) assert.is(new VirtioNetDevice({ backends: [new LoopbackQueue()], mac: TEST_MAC, mtu: ok }).mtu, ok);
});

for (const negotiated of [true, false]) {
  test(`MTU 1500 ${negotiated ? 'negotiated: frames over 1514 (1518 tagged) are dropped and counted on transmit' : 'not negotiated: the driver is held to no MTU'}`, () => {
    const rig = createNetRig({ loopback: { slotSize: 8192 } });
    const { driver } = rig;
    assert.ok(driver.bringUp({ features: featureMask(N.MRG_RXBUF, ...(negotiated ? [N.MTU] : [])) }).ok);
    const frames = [makeFrame(1, 1514), makeFrame(2, 1515), tagged(3, 1518), tagged(4, 1519), makeFrame(5, 60), makeFrame(6, 4000)];
    assert.is(driver.send(frames), frames.length);
    const got = driver.receiveAtLeast(negotiated ? 3 : 6);
    const c = rig.device.queuePairs()[0]!.counters;
    if (negotiated) {
      assert.equal(got.map((g) => g.frame.length), [1514, 1518, 60]);
      assert.is(c.txDropOverMtu, 3);
      assert.is(c.txFrames, 3);
    } else {
      assert.equal(got.map((g) => g.frame.length), [1514, 1515, 1518, 1519, 60, 4000]);
      assert.is(c.txDropOverMtu, 0);
    }
    assert.equal(got[0]!.frame, frames[0]);
    assert.is(driver.reclaimTx() + driver.tx().completed >= frames.length, true, 'every chain, dropped or not, was used');
    assert.not.ok(driver.needsReset);
  });
}

test('MTU negotiated: a received frame over MTU + 14 (+4 tagged) is not passed to the driver; taken from the backend and counted', () => {
  const rig = createNetRig({ mtu: 1500 });
  const { driver } = rig;
  assert.ok(driver.bringUp({ features: featureMask(N.MTU, N.MRG_RXBUF) }).ok);
  const lb = rig.loopbacks[0]!;
  for (const f of [makeFrame(1, 1515), makeFrame(2, 1514), tagged(3, 1519), tagged(4, 1518)]) assert.ok(lb.inject(f));
  driver.poll();
  const got = driver.receiveAtLeast(2);
  assert.equal(got.map((g) => frameSeq(g.frame.length === 1518 ? untag(g.frame) : g.frame)), [2, 4]);
  const c = rig.device.queuePairs()[0]!.counters;
  assert.is(c.rxDropOverMtu, 2);
  assert.is(c.rxFrames, 2);
  assert.is(lb.rxPeek(10), 0, 'the dropped frames left the backend');
  assert.is(lb.accounted(), lb.slots);
});

function untag(f: Uint8Array): Uint8Array {
  const out = new Uint8Array(f.length - 4);
  out.set(f.subarray(0, 12), 0);
  out.set(f.subarray(16), 12);
  return out;
}

test('MTU negotiated with TSO: segments whose IP packet exceeds the MTU are dropped and counted, the others are cut as before', () => {
  const rig = createNetRig({ mtu: 1500 });
  const { driver } = rig;
  assert.ok(driver.bringUp({ features: featureMask(N.MTU, N.CSUM, N.HOST_TSO4, N.MRG_RXBUF) }).ok);
  const payload = patternPayload(6000, 3);
  const f = ipFrame({ proto: 'tcp', payload, partialChecksum: true });
  const send = (mss: number): void => {
    driver.send(f.frame, {
      header: { flags: NetHdrFlags.NEEDS_CSUM, gsoType: NetGsoType.TCPV4, hdrLen: f.hdrLen, gsoSize: mss, csumStart: f.l4, csumOffset: 16 },
    });
  };
  const c = rig.device.queuePairs()[0]!.counters;
  send(1461); // 20 + 20 + 1461 = 1501
  assert.is(c.txDropOverMtu, 1);
  assert.is(driver.receiveAtLeast(1, 0, 5).length, 0);
  send(1460);
  const segs = driver.receiveAtLeast(5);
  assert.is(segs.length, 5);
  assert.ok(segs.every((s) => s.frame.length <= 1514));
  assert.is(c.txSegmented, 1);
});

test('host_mtu= on -device virtio-net-pci: 68..65535, else an error naming it; default the interface MTU (1500 when it is not one a device may offer)', () => {
  const base = ['-kernel', '/dev/null', '-netdev', 'af-xdp,id=n0,ifname=eth0'];
  const dev = (extra: string): string[] => [...base, '-device', `virtio-net-pci,netdev=n0${extra}`];
  assert.is(parseRunOptions(dev(',host_mtu=9000')).nets[0]!.hostMtu, 9000);
  assert.is(parseRunOptions(dev('')).nets[0]!.hostMtu, undefined);
  for (const bad of ['67', '65536', 'big', '-1', '']) {
    assert.throws(() => parseRunOptions(dev(`,host_mtu=${bad}`)), (e: unknown) => e instanceof RunOptionError && /-device virtio-net-pci: host_mtu: '.*' is not an integer in 68\.\.65535/.test((e as Error).message));
  }
  assert.equal([deviceMtu(9000), deviceMtu(1500), deviceMtu(65536), deviceMtu(0)], [9000, 1500, 1500, 1500]);
});

test.run();
