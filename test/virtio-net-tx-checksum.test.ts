// Software checksum offload (VIRTIO_NET_F_CSUM, §5.1.6.2): the driver sends
// a frame with NEEDS_CSUM, csum_start/csum_offset and the pseudo-header sum
// in the checksum field; the frame leaves the device with the complete
// checksum. Verified here with a checksum computed from scratch.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { NetFeature as N, NetGsoType, NetHdrFlags, VirtioFeature as V, featureMask } from 'virtio-spec-types';
import { createNetRig, ipFrame, type IpFrameOptions } from '../src/test-driver';

/** RFC 1071 over bytes, from scratch: 16-bit big-endian words, end-around carry. */
function inetSum(parts: Uint8Array[]): number {
  const all = new Uint8Array(parts.reduce((s, p) => s + p.length + (p.length & 1), 0));
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.length + (p.length & 1); // each part padded to a whole word
  }
  let s = 0;
  for (let i = 0; i < all.length; i += 2) s += (all[i]! << 8) | all[i + 1]!;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

/** Whether the frame's TCP/UDP checksum verifies (sum over pseudo-header and segment is all ones). */
function transportChecksumOk(f: Uint8Array, l3: number, v6: boolean): boolean {
  const dv = new DataView(f.buffer, f.byteOffset);
  const proto = v6 ? f[l3 + 6]! : f[l3 + 9]!;
  const l4 = l3 + (v6 ? 40 : (f[l3]! & 0xf) * 4);
  const len = f.length - l4;
  const pseudo = new Uint8Array(v6 ? 40 : 12);
  const pv = new DataView(pseudo.buffer);
  if (v6) {
    pseudo.set(f.subarray(l3 + 8, l3 + 40), 0);
    pv.setUint32(32, len);
    pv.setUint32(36, proto);
  } else {
    pseudo.set(f.subarray(l3 + 12, l3 + 20), 0);
    pv.setUint16(8, proto);
    pv.setUint16(10, len);
  }
  if (proto === 17 && dv.getUint16(l4 + 6) === 0) return false; // "no checksum" is not what NEEDS_CSUM asks for
  return inetSum([pseudo, f.subarray(l4)]) === 0xffff;
}

function csumRig(packed = false): ReturnType<typeof createNetRig> {
  const rig = createNetRig();
  assert.ok(rig.driver.bringUp({ features: featureMask(N.CSUM, ...(packed ? [V.RING_PACKED] : [])) }).ok);
  return rig;
}

const cases: [string, IpFrameOptions][] = [
  ['UDP/IPv4', { proto: 'udp', payload: 333 }],
  ['TCP/IPv4', { proto: 'tcp', payload: 1000, tcpFlags: 0x18 }],
  ['UDP/IPv6', { proto: 'udp', payload: 64 }],
  ['TCP/IPv6', { proto: 'tcp', payload: 1439, v6: true }],
  ['TCP/IPv4 behind a VLAN tag, odd payload', { proto: 'tcp', payload: 77, vlan: 42 }],
  ['UDP/IPv4 with a 1-byte payload', { proto: 'udp', payload: 1 }],
];
for (const [name, opts] of cases) {
  for (const packed of [false, true]) {
    test(`${name} (${packed ? 'packed' : 'split'}): NEEDS_CSUM -> the frame arrives with a correct checksum`, () => {
      const rig = csumRig(packed);
      const v6 = opts.v6 ?? name.includes('IPv6');
      const f = ipFrame({ ...opts, v6, partialChecksum: true });
      assert.not.ok(transportChecksumOk(f.frame, f.l3, v6), 'the partial checksum is not yet valid');
      rig.driver.send(f.frame, { header: { flags: NetHdrFlags.NEEDS_CSUM, csumStart: f.l4, csumOffset: f.csumOffset }, descriptors: 3 });
      const [g] = rig.driver.receiveAtLeast(1);
      assert.ok(g);
      assert.ok(transportChecksumOk(g.frame, f.l3, v6), 'checksum verifies');
      // Only the checksum field changed.
      const expect = f.frame.slice();
      expect.set(g.frame.subarray(f.l4 + f.csumOffset, f.l4 + f.csumOffset + 2), f.l4 + f.csumOffset);
      assert.equal(g.frame, expect);
    });
  }
}

test('a header cut after its first byte (flags | gso_type straddle two descriptors) is still read whole', () => {
  for (const packed of [false, true]) {
    const rig = csumRig(packed);
    const f = ipFrame({ proto: 'udp', payload: 40, partialChecksum: true });
    const total = 12 + f.frame.length;
    rig.driver.send(f.frame, {
      header: { flags: NetHdrFlags.NEEDS_CSUM, csumStart: f.l4, csumOffset: f.csumOffset },
      lengths: [1, 4, 7, total - 12],
    });
    // And a plain frame whose header's first byte sits alone.
    const plain = ipFrame({ proto: 'udp', payload: 10 });
    rig.driver.send(plain.frame, { lengths: [1, 12 + plain.frame.length - 1] });
    const got = rig.driver.receiveAtLeast(2);
    assert.is(got.length, 2);
    assert.ok(transportChecksumOk(got[0]!.frame, f.l3, false), `${packed ? 'packed' : 'split'}: checksum verifies`);
    assert.equal(got[1]!.frame, plain.frame);
  }
});

test('a checksum position beyond the frame drops the frame and counts it', () => {
  const rig = csumRig();
  const f = ipFrame({ proto: 'udp', payload: 20, partialChecksum: true });
  rig.driver.send(f.frame, { header: { flags: NetHdrFlags.NEEDS_CSUM, csumStart: f.frame.length - 1, csumOffset: 0 } });
  rig.driver.poll();
  assert.is(rig.driver.receive().length, 0);
  assert.is(rig.device.queuePairs()[0]!.counters.txDropBadCsum, 1);
  assert.is(rig.driver.reclaimTx(), 1, 'the chain is returned');
  assert.not.ok(rig.driver.needsReset);
});

test('without CSUM negotiated NEEDS_CSUM is not acted on: the frame passes unchanged', () => {
  const rig = createNetRig();
  rig.driver.bringUp({ features: 0n });
  const f = ipFrame({ proto: 'udp', payload: 100, partialChecksum: true });
  rig.driver.send(f.frame, { header: { flags: NetHdrFlags.NEEDS_CSUM, csumStart: f.l4, csumOffset: 6 } });
  const [g] = rig.driver.receiveAtLeast(1);
  assert.equal(g!.frame, f.frame);
});

test('without CSUM or HOST_TSO the header is not read: a gso_type the driver must not set (§5.1.6.2.1) goes out as a plain frame', () => {
  const rig = createNetRig();
  rig.driver.bringUp({ features: 0n });
  const f = ipFrame({ proto: 'tcp', payload: 200 });
  rig.driver.send(f.frame, { header: { flags: 0xff, gsoType: NetGsoType.TCPV4, gsoSize: 100, csumStart: 0xffff, csumOffset: 0xffff } });
  const [g] = rig.driver.receiveAtLeast(1);
  assert.equal(g!.frame, f.frame);
  const c = rig.device.queuePairs()[0]!.counters;
  assert.is(c.txDropOversize + c.txDropBadCsum, 0);
});

test.run();
