// Frames cross a veth pair through the TypeScript AF_XDP backend in both
// directions, byte for byte, in every attach mode.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { NetBackendQueue } from '../src/backend/net-backend';
import { frameSeq, makeFrame } from './support/frames';
import { drainTx, receive, sendAll } from './support/queue-traffic';
import { openBackend, withVeth } from './support/veth-backends';

const N = 1000;
const CHUNK = 200;
const isTest = (f: Uint8Array): boolean => frameSeq(f) !== -1;

// Sender and receiver share this thread: move chunks smaller than the rings.
async function exchange(from: NetBackendQueue, to: NetBackendQueue, sent: Uint8Array[]): Promise<Uint8Array[]> {
  const got: Uint8Array[] = [];
  for (let i = 0; i < sent.length; i += CHUNK) {
    const chunk = sent.slice(i, i + CHUNK);
    assert.is(await sendAll(from, chunk), 0);
    got.push(...(await receive(to, chunk.length, 5000, isTest)));
  }
  return got;
}

function frames(n: number, tag: number): Uint8Array[] {
  return Array.from({ length: n }, (_, i) => makeFrame(i, 60 + ((i * 37) % 1455), tag));
}

for (const variant of [
  { name: 'native mode', opts: ',mode=native', expectMode: 'native' },
  { name: 'skb mode', opts: ',mode=skb', expectMode: 'skb' },
  { name: 'auto mode (reports native on veth)', opts: '', expectMode: 'native' },
  { name: 'force-copy', opts: ',force-copy=on', expectMode: 'native' },
]) {
  test(`${N} frames cross both ways intact in ${variant.name}`, async () => {
    await withVeth('traffic', {}, async (pair) => {
      const a = openBackend(pair.a.netns, `af-xdp,id=a,ifname=${pair.a.ifname}${variant.opts}`);
      const b = openBackend(pair.b.netns, `af-xdp,id=b,ifname=${pair.b.ifname}${variant.opts}`);
      try {
        assert.is(a.mode, variant.expectMode);
        assert.is(a.zeroCopy, false, 'veth has no zero-copy');
        const qa = a.queues[0]!;
        const qb = b.queues[0]!;
        for (const [from, to, tag] of [[qa, qb, 1], [qb, qa, 2]] as const) {
          const sent = frames(N, tag);
          const got = await exchange(from, to, sent);
          assert.is(got.length, N, `received ${got.length} of ${N}`);
          for (let i = 0; i < N; i++) {
            assert.is(frameSeq(got[i]!), i, `frame ${i} out of order or corrupted`);
            assert.equal(got[i], sent[i]);
          }
          await drainTx(from);
        }
        assert.is(qa.counters.txPackets, N);
        assert.ok(qa.counters.txKicks > 0 && qa.counters.txKicks <= N / 2, `kicks are per batch (${qa.counters.txKicks})`);
        for (const q of [qa, qb]) {
          const acc = q.frameAccounting();
          assert.is(acc.total, q.frameCount, JSON.stringify(acc));
        }
      } finally {
        a.close();
        b.close();
      }
      for (const side of [pair.a, pair.b]) {
        const { xdpState } = await import('../src/host/netns');
        assert.is(xdpState(side.netns, side.ifname).attached, 0, `program left on ${side.ifname}`);
      }
    });
  });
}

test.run();
