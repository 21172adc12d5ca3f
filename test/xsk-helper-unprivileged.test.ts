// Unprivileged mode: `xdpvm xsk-helper` attaches the program and hands
// sockets to a child with no capabilities at all, which moves traffic both
// ways through inhibit=on,sock-fds=...; the program goes with the helper.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { xdpState } from '../src/host/netns';
import { frameSeq, frameTag, makeFrame } from './support/frames';
import { receive, sendAll } from './support/queue-traffic';
import { openBackend, withVeth } from './support/veth-backends';
import { repoRoot } from '../src/repo-root';
import { nobodyTest } from './support/unprivileged';

const root = repoRoot();
const N = 200;

nobodyTest('traffic flows both ways in a child whose capability sets are empty', async () => {
  await withVeth('helper', {}, async (pair) => {
    const peer = openBackend(pair.b.netns, `af-xdp,id=p,ifname=${pair.b.ifname}`);
    try {
      const child = spawn(
        'ip',
        ['netns', 'exec', pair.a.netns, process.execPath, path.join(root, 'bin', 'xdpvm'), 'xsk-helper', '--ifname', pair.a.ifname,
          '--memlock', String(8 << 20), '--',
          process.execPath, path.join(root, 'dist', 'test', 'support', 'inhibit-endpoint.js'),
          `af-xdp,id=n0,ifname=${pair.a.ifname},inhibit=on,sock-fds={sock-fds}`, String(N)],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let out = '';
      let err = '';
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      const ready = new Promise<void>((resolve) => {
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          if (out.includes('ready\n')) resolve();
        });
      });
      const exited = new Promise<number>((resolve) => child.on('exit', (c) => resolve(c ?? -1)));
      await Promise.race([ready, exited]);
      assert.ok(out.includes('ready'), `child did not start: ${err}`);
      assert.ok(xdpState(pair.a.netns, pair.a.ifname).attached !== 0, 'helper attached the program');
      const q = peer.queues[0]!;
      const fromChild = await receive(q, N, 10000, (f) => frameSeq(f) >= 0 && frameTag(f) === 7);
      assert.is(fromChild.length, N, 'peer received what the unprivileged child sent');
      assert.ok(fromChild.every((f, i) => frameSeq(f) === i));
      for (let i = 0; i < N; i += 100) await sendAll(q, Array.from({ length: 100 }, (_, k) => makeFrame(i + k, 100, 8)));
      const code = await exited;
      assert.is(code, 0, `helper exit ${code}: ${err}`);
      const result = JSON.parse(out.trim().split('\n').pop()!) as {
        uid: number; caps: Record<string, string>; sent: number; received: number; inOrder: boolean; mode: string;
      };
      assert.is(result.uid, 65534);
      assert.equal(result.caps, { inheritable: '0', permitted: '0', effective: '0', bounding: '0', ambient: '0' });
      assert.is(result.sent, N);
      assert.is(result.received, N);
      assert.ok(result.inOrder);
      assert.is(xdpState(pair.a.netns, pair.a.ifname).attached, 0, 'program detached after the helper exited');
    } finally {
      peer.close();
    }
  });
});

test('the helper refuses a command without {sock-fds}', async () => {
  const child = spawn(process.execPath, [path.join(root, 'bin', 'xdpvm'), 'xsk-helper', '--ifname', 'lo', '--', 'true'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number>((resolve) => child.on('exit', (c) => resolve(c ?? -1)));
  assert.is(code, 2);
  assert.match(err, /\{sock-fds\}/);
});

test.run();
