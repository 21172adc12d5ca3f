// A veth side's NAPI in threads of its own, pinned: the bench moves its peer's
// receive work off the CPU of the code it measures this way. The threads must
// be the pair's own (names repeat across namespaces), pinned where asked, and
// frames still arrive; without NAPI (no XDP program) it is refused, clearly.
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { XdpCounter } from '../src/bench/xdp-counter';
import { runEndpoint } from '../src/bench/xsk-endpoint';
import { DEFAULT_RING_SIZE } from '../src/backend/af-xdp/xsk-socket';
import { inNetns, VethPair } from '../src/host/netns';
import { xsk } from '../src/native/xsk';

const cpusOf = (tid: number): string => /Cpus_allowed_list:\s*(\S+)/.exec(readFileSync(`/proc/${tid}/status`, 'utf8'))![1]!;
const commOf = (tid: number): string => readFileSync(`/proc/${tid}/comm`, 'utf8').trim();

test('threadNapi gives the side pinned NAPI threads of its own, and its XDP program still sees every frame', async () => {
  const cpu = availableParallelism() - 1;
  const one = new VethPair('napi');
  const two = new VethPair('napi');
  let c1: XdpCounter | undefined;
  let c2: XdpCounter | undefined;
  try {
    c1 = inNetns(one.b.netns, () => XdpCounter.attach(xsk.ifNameToIndex(one.b.ifname), 'native'));
    c2 = inNetns(two.b.netns, () => XdpCounter.attach(xsk.ifNameToIndex(two.b.ifname), 'native'));
    const first = one.threadNapi('b', cpu);
    const second = two.threadNapi('b', 0);
    assert.ok(first.length >= 1);
    assert.ok(second.length >= 1);
    // Same device name in both namespaces: each pair got only the threads it created.
    for (const t of first) assert.not.ok(second.includes(t));
    for (const t of first) {
      assert.match(commOf(t), `napi/${one.b.ifname}-`);
      assert.is(cpusOf(t), String(cpu));
    }
    for (const t of second) assert.is(cpusOf(t), '0');
    const sent = await runEndpoint(
      { netns: one.a.netns, ifname: one.a.ifname, impl: 'c', direction: 'tx', xdpMode: 'native', seconds: 0.3, size: 64, batch: 64, queue: 0 },
      'C tx',
    );
    assert.ok(sent.packets > 0);
    // The NAPI thread drains the veth's ring after sendto returns: give it a moment.
    for (let i = 0; i < 50 && c1.total() < sent.packets; i++) await new Promise((r) => setTimeout(r, 20));
    // The peer's ring may overflow while its thread waits for a CPU: what arrived is counted, never more than sent.
    // The C loop counts completions: frames still on its Tx ring when it stopped reach the peer uncounted there.
    assert.ok(c1.total() > 0, 'frames reach the XDP program through the NAPI thread');
    assert.ok(c1.total() <= sent.packets + DEFAULT_RING_SIZE, `peer counted ${c1.total()}, the C loop completed ${sent.packets}`);
  } finally {
    c1?.close();
    c2?.close();
    one.remove();
    two.remove();
  }
});

test('threadNapi on a side without NAPI (no XDP program) is refused with the reason', () => {
  const pair = new VethPair('napi');
  try {
    assert.throws(() => pair.threadNapi('b', 0), /threaded|NAPI/);
  } finally {
    pair.remove();
  }
});

test.run();
