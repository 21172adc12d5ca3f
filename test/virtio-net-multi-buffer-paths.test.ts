// The device's multi-buffer paths without a kernel (test/support/
// segmented-loopback.ts: 1 KiB Tx buffers, frames echoed back split into
// smaller Rx buffers): a frame over several backend buffers is copied across
// them intact, a completed checksum lands even when its two bytes fall in
// different buffers, TSO segments larger than one buffer are cut right, and
// received frames in several buffers fill mergeable or big receive chains.
// No backend buffer is left behind.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { NetFeature as N, NetGsoType, NetHdrFlags, featureMask } from 'virtio-spec-types';
import { createNetRig, ipFrame, patternPayload, pseudoHeaderSum, PROTO_TCP, sum16 as ones } from '../src/test-driver';
import { makeFrame } from './support/frames';
import { SegmentedLoopback } from './support/segmented-loopback';

for (const [start, offset] of [
  [1017, 6], // the field is bytes 1023 and 1024: the last of the first buffer and the first of the second
  [1030, 1070], // bytes 2100 and 2101, both in the third buffer
  [20, 10],
] as const) {
  test(`NEEDS_CSUM at ${start}+${offset} of a 3000-byte frame over 1 KiB backend buffers: stored whole, the rest intact`, () => {
    const be = new SegmentedLoopback(1024, 700);
    const rig = createNetRig({ backends: [be] });
    const { driver } = rig;
    assert.ok(driver.bringUp({ features: featureMask(N.CSUM, N.MRG_RXBUF) }).ok);
    const f = makeFrame(7, 3000);
    const at = start + offset;
    f[at] = 0xa5; // the driver's partial sum, part of what is summed
    f[at + 1] = 0x0f;
    let want = ~ones(f.subarray(start)) & 0xffff;
    if (want === 0) want = 0xffff;
    driver.send(f, { header: { flags: NetHdrFlags.NEEDS_CSUM, csumStart: start, csumOffset: offset }, descriptors: 3 });
    const got = driver.receiveAtLeast(1);
    assert.is(got.length, 1);
    const g = got[0]!.frame;
    assert.is((g[at]! << 8) | g[at + 1]!, want, 'the checksum, both bytes');
    const expect = f.slice();
    expect[at] = want >> 8;
    expect[at + 1] = want & 0xff;
    assert.equal(g, expect, 'every other byte as sent');
    assert.is(got[0]!.header.numBuffers, Math.ceil((12 + 3000) / 1526), 'the 5 received buffers scattered over mergeable chains');
    assert.is(be.leaked, 0);
  });
}

test('TSO with a 3000-byte MSS over 1 KiB backend buffers: 7 segments, headers and payload right, checksums valid', () => {
  const be = new SegmentedLoopback(1024, 1000);
  const rig = createNetRig({ backends: [be] });
  const { driver } = rig;
  assert.ok(driver.bringUp({ features: featureMask(N.CSUM, N.HOST_TSO4, N.MRG_RXBUF) }).ok);
  const payload = patternPayload(20_000, 9);
  const f = ipFrame({ proto: 'tcp', payload, seq: 1000, partialChecksum: true });
  const mss = 3000;
  driver.send(f.frame, {
    header: { flags: NetHdrFlags.NEEDS_CSUM, gsoType: NetGsoType.TCPV4, hdrLen: f.hdrLen, gsoSize: mss, csumStart: f.l4, csumOffset: 16 },
    descriptors: 5,
  });
  const segs = driver.receiveAtLeast(7);
  assert.is(segs.length, 7);
  const joined: number[] = [];
  segs.forEach((s, i) => {
    const b = s.frame;
    const len = Math.min(mss, payload.length - i * mss);
    assert.is(b.length, f.hdrLen + len);
    const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
    assert.is(v.getUint32(f.l4 + 4), 1000 + i * mss, 'sequence number');
    assert.is(v.getUint16(14 + 2), b.length - 14, 'IPv4 total length');
    assert.is(ones(b.subarray(14, f.l4)), 0xffff, 'IPv4 header checksum');
    assert.is(ones(b.subarray(f.l4), pseudoHeaderSum(b, 14, false, PROTO_TCP, b.length - f.l4)), 0xffff, `segment ${i}: TCP checksum`);
    joined.push(...b.subarray(f.hdrLen));
  });
  assert.equal(Uint8Array.from(joined), payload, 'the payload, in order');
  assert.is(rig.device.queuePairs()[0]!.counters.txSegmented, 1);
  assert.is(be.leaked, 0);
});

test('without MRG_RXBUF a frame in several backend buffers fills one big receive chain', () => {
  const be = new SegmentedLoopback(1024, 600);
  const rig = createNetRig({ backends: [be] });
  const { driver } = rig;
  assert.ok(driver.bringUp({ features: 0n, rx: { sizes: [12, 2048, 2048, 2048], count: 8 } }).ok);
  const frames = [makeFrame(1, 5000), makeFrame(2, 6144), makeFrame(3, 60)];
  driver.send(frames);
  const got = driver.receiveAtLeast(3);
  assert.equal(got.map((g) => g.frame), frames);
  assert.ok(got.every((g) => g.ids.length === 1 && g.header.numBuffers === 1));
  // A chain holds 12 + 3 * 2048 = 6156 bytes: 6144 filled one exactly, 6145 is one too many (dropped, counted).
  driver.send([makeFrame(4, 6145), makeFrame(5, 100)]);
  assert.equal(driver.receiveAtLeast(1).map((g) => g.frame.length), [100]);
  assert.is(rig.device.queuePairs()[0]!.counters.rxDropTooSmall, 1);
  assert.is(be.leaked, 0);
  assert.not.ok(driver.needsReset);
});

test.run();
