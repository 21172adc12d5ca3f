// `xdpvm vhost-user`: argument errors name the argument; a running server
// prints a line per connection, stops on SIGTERM with its counters, exits 0
// and leaves no XDP program and no socket file behind.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VethPair } from '../src/host/netns';
import { Request } from '../src/vhost-user/protocol';
import { sleep } from './support/queue-traffic';
import { VhostUserFrontEnd } from './support/vhost-user-front-end';
import { socketPathFor, xdpAttached } from './support/vhost-user-rig';

const BIN = path.resolve(__dirname, '..', '..', 'bin', 'xdpvm');

test('argument errors', () => {
  for (const [args, pattern] of [
    [['--socket', '/tmp/x.sock'], /-netdev af-xdp,\.\.\. is required/],
    [['-netdev', 'af-xdp,id=n0,ifname=lo'], /exactly one of --socket and --fd/],
    [['--socket', '/tmp/x.sock', '--fd', '5', '-netdev', 'af-xdp,id=n0,ifname=lo'], /exactly one of --socket and --fd/],
    [['--socket', '/tmp/x.sock', '-netdev', 'af-xdp,id=n0,ifname=lo', '--mac', '01:00:00:00:00:01'], /multicast/],
    [['--socket', '/tmp/x.sock', '-netdev', 'af-xdp,id=n0'], /'ifname' is required/],
    [['--socket', '/tmp/x.sock', '-netdev', 'af-xdp,id=n0,ifname=lo', '--bogus', '1'], /unknown option '--bogus'/],
  ] as const) {
    const r = spawnSync(process.execPath, [BIN, 'vhost-user', ...args], { encoding: 'utf8' });
    assert.is(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, pattern);
  }
  const caps = spawnSync(process.execPath, [BIN, 'vhost-user', '--print-capabilities'], { encoding: 'utf8' });
  assert.is(caps.status, 0);
  assert.equal(JSON.parse(caps.stdout), { type: 'net', features: [] });
});

test('serves a front end, then stops cleanly on SIGTERM with its counters', async () => {
  const pair = new VethPair('vuc');
  const socketPath = socketPathFor('vuc');
  try {
    const child = spawn('ip', ['netns', 'exec', pair.a.netns, process.execPath, BIN, 'vhost-user', '--socket', socketPath, '-netdev', `af-xdp,id=n0,ifname=${pair.a.ifname}`], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (out += b.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    for (let i = 0; i < 200 && !out.includes('listening on'); i++) await sleep(25);
    assert.match(out, /listening on .*1 queue pair\(s\) on xv-a/);
    const f = await VhostUserFrontEnd.connect(socketPath);
    assert.ok((await f.call(Request.GET_FEATURES)).u64() > 0n);
    f.close();
    for (let i = 0; i < 100 && !out.includes('connection 1 closed'); i++) await sleep(10);
    assert.match(out, /connection 1 from pid \d+/);
    assert.match(out, /connection 1 closed \(front end disconnected/);
    child.kill('SIGTERM'); // ip netns exec execs the program: this is the server
    const code = await exited;
    assert.is(code, 0, out);
    assert.match(out, /SIGTERM: stopping/);
    assert.match(out, /queue pair 0: never started/);
    assert.match(out, /1 connection\(s\) served/);
    assert.not.ok(existsSync(socketPath), 'socket file removed');
    assert.not.ok(xdpAttached(pair.a.netns, pair.a.ifname), 'no XDP program left');
  } finally {
    pair.remove();
  }
});

test.run();
