// Software TCP segmentation (VIRTIO_NET_F_HOST_TSO4/6, §5.1.6.2): a 20 KB
// GSO frame leaves the device as MSS-sized segments, each a valid frame:
// IP lengths, IPv4 ids and header checksums, TCP sequence numbers and
// checksums, FIN/PSH on the last segment only, CWR on the first only.
// Everything is checked here from scratch against the original frame.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { NetFeature as N, NetGsoType, NetHdrFlags, VirtioFeature as V, featureMask } from 'virtio-spec-types';
import { createNetRig, ipFrame, patternPayload } from '../src/test-driver';

function ones(bytes: Uint8Array, initial = 0): number {
  let s = initial;
  for (let i = 0; i + 1 < bytes.length; i += 2) s += (bytes[i]! << 8) | bytes[i + 1]!;
  if (bytes.length & 1) s += bytes[bytes.length - 1]! << 8;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

function tcpChecksumOk(f: Uint8Array, l3: number, v6: boolean): boolean {
  const l4 = l3 + (v6 ? 40 : 20);
  const len = f.length - l4;
  const p = new Uint8Array(v6 ? 40 : 12);
  const pv = new DataView(p.buffer);
  if (v6) {
    p.set(f.subarray(l3 + 8, l3 + 40));
    pv.setUint32(32, len);
    pv.setUint32(36, 6);
  } else {
    p.set(f.subarray(l3 + 12, l3 + 20));
    pv.setUint16(8, 6);
    pv.setUint16(10, len);
  }
  return ones(f.subarray(l4), ones(p)) === 0xffff;
}

const PAYLOAD = 20_000;
const FIN = 0x01;
const PSH = 0x08;
const ACK = 0x10;
const CWR = 0x80;

for (const v6 of [false, true]) {
  for (const packed of [false, true]) {
    test(`TCPv${v6 ? 6 : 4} (${packed ? 'packed' : 'split'}): a 20 KB GSO frame becomes MSS segments with correct headers`, () => {
      const rig = createNetRig();
      const { driver } = rig;
      assert.ok(driver.bringUp({ features: featureMask(N.CSUM, N.HOST_TSO4, N.HOST_TSO6, V.INDIRECT_DESC, ...(packed ? [V.RING_PACKED] : [])) }).ok);
      const mss = v6 ? 1440 : 1448;
      const seq0 = 0xffff_f000; // wraps during the burst
      const payload = patternPayload(PAYLOAD, 5);
      const f = ipFrame({ proto: 'tcp', v6, payload, seq: seq0, tcpFlags: ACK | PSH | FIN | CWR, ipId: 0xfffe, partialChecksum: true });
      const gsoType = (v6 ? NetGsoType.TCPV6 : NetGsoType.TCPV4) | NetGsoType.ECN;
      driver.send(f.frame, {
        header: { flags: NetHdrFlags.NEEDS_CSUM, gsoType, hdrLen: f.hdrLen, gsoSize: mss, csumStart: f.l4, csumOffset: 16 },
        descriptors: 4,
        separateHeader: true,
        indirect: true,
      });
      const n = Math.ceil(PAYLOAD / mss);
      const segs = driver.receiveAtLeast(n);
      assert.is(segs.length, n);
      assert.is(rig.device.queuePairs()[0]!.counters.txSegmented, 1);
      const joined = new Uint8Array(PAYLOAD);
      segs.forEach(({ frame: s }, i) => {
        const chunk = Math.min(mss, PAYLOAD - i * mss);
        const dv = new DataView(s.buffer, s.byteOffset, s.byteLength);
        assert.is(s.length, f.hdrLen + chunk, `segment ${i} length`);
        assert.ok(s.length <= 1514);
        assert.equal(s.subarray(0, 14), f.frame.subarray(0, 14), 'Ethernet header copied');
        if (v6) {
          assert.is(dv.getUint16(f.l3 + 4), 20 + chunk, 'IPv6 payload length');
          assert.equal(s.subarray(f.l3 + 6, f.l4), f.frame.subarray(f.l3 + 6, f.l4));
        } else {
          assert.is(dv.getUint16(f.l3 + 2), 40 + chunk, 'IPv4 total length');
          assert.is(dv.getUint16(f.l3 + 4), (0xfffe + i) & 0xffff, 'IPv4 id increments');
          assert.is(ones(s.subarray(f.l3, f.l4)), 0xffff, 'IPv4 header checksum');
          assert.is(s[f.l3 + 9], 6);
        }
        assert.is(dv.getUint32(f.l4 + 4), (seq0 + i * mss) >>> 0, 'sequence number');
        assert.is(dv.getUint32(f.l4 + 8), 0x1111, 'ack number kept');
        const flags = s[f.l4 + 13]!;
        const last = i === n - 1;
        assert.is(flags & (FIN | PSH), last ? FIN | PSH : 0, `FIN/PSH only on the last (segment ${i})`);
        assert.is(flags & CWR, i === 0 ? CWR : 0, 'CWR only on the first');
        assert.is(flags & ACK, ACK);
        assert.ok(tcpChecksumOk(s, f.l3, v6), `TCP checksum of segment ${i}`);
        joined.set(s.subarray(f.hdrLen), i * mss);
      });
      assert.equal(joined, payload, 'payload reassembles');
      assert.equal(driver.rx().problems, []);
    });
  }
}

test('a GSO frame without HOST_TSO negotiated is dropped and counted, its chain returned', () => {
  const rig = createNetRig();
  rig.driver.bringUp({ features: featureMask(N.CSUM) });
  const f = ipFrame({ proto: 'tcp', payload: 5000, partialChecksum: true });
  rig.driver.send(f.frame, { header: { flags: NetHdrFlags.NEEDS_CSUM, gsoType: NetGsoType.TCPV4, hdrLen: f.hdrLen, gsoSize: 1448, csumStart: f.l4, csumOffset: 16 } });
  rig.driver.poll();
  assert.is(rig.driver.receive().length, 0);
  assert.is(rig.device.queuePairs()[0]!.counters.txDropOversize, 1);
  assert.is(rig.driver.reclaimTx(), 1);
});

test('a GSO frame that is UDP, not TCP, is dropped rather than sent malformed', () => {
  const rig = createNetRig();
  rig.driver.bringUp({ features: featureMask(N.CSUM, N.HOST_TSO4) });
  const f = ipFrame({ proto: 'udp', payload: 3000, partialChecksum: true });
  rig.driver.send(f.frame, { header: { flags: NetHdrFlags.NEEDS_CSUM, gsoType: NetGsoType.TCPV4, gsoSize: 1448, csumStart: f.l4, csumOffset: 6 } });
  rig.driver.poll();
  assert.is(rig.driver.receive().length, 0);
  assert.is(rig.device.queuePairs()[0]!.counters.txFrames, 0);
  assert.not.ok(rig.driver.needsReset);
});

test.run();
