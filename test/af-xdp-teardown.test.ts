// Tear-down: no XDP program is left on the interface after a normal exit,
// after SIGKILL (the BPF link dies with the process), or after open/close
// cycles, which also leak no fd.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { xdpState } from '../src/host/netns';
import { openFds } from './support/fd-count';
import { sleep } from './support/queue-traffic';
import { openBackend, withVeth } from './support/veth-backends';
import { repoRoot } from '../src/repo-root';

const root = repoRoot();

function holder(netns: string, ifname: string, closeAfterMs: number): ReturnType<typeof spawn> {
  const script = `
    const { AfXdpBackend } = require(${JSON.stringify(path.join(root, 'dist/src/backend/af-xdp/af-xdp-backend.js'))});
    const { parseAfXdpOptions } = require(${JSON.stringify(path.join(root, 'dist/src/backend/af-xdp/af-xdp-options.js'))});
    const b = AfXdpBackend.open(parseAfXdpOptions('af-xdp,id=n,ifname=${ifname},queues=1'), { frameSize: 4096, frameCount: 1024, ringSize: 256 });
    console.log('ready ' + b.mode);
    setTimeout(() => { b.close(); }, ${closeAfterMs});`;
  return spawn('ip', ['netns', 'exec', netns, process.execPath, '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
}

async function waitReady(child: ReturnType<typeof spawn>): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
    child.on('exit', (c) => reject(new Error(`holder exited ${c}`)));
  });
}

async function waitDetached(netns: string, ifname: string): Promise<number> {
  for (let i = 0; i < 100; i++) {
    const st = xdpState(netns, ifname).attached;
    if (st === 0) return 0;
    await sleep(10);
  }
  return xdpState(netns, ifname).attached;
}

test('no program left after a normal exit', async () => {
  await withVeth('td', {}, async (pair) => {
    const child = holder(pair.a.netns, pair.a.ifname, 100);
    await waitReady(child);
    assert.ok(xdpState(pair.a.netns, pair.a.ifname).attached !== 0, 'attached while running');
    assert.is(await new Promise((r) => child.on('exit', r)), 0);
    assert.is(await waitDetached(pair.a.netns, pair.a.ifname), 0);
  });
});

test('no program left after SIGKILL', async () => {
  await withVeth('td', {}, async (pair) => {
    const child = holder(pair.a.netns, pair.a.ifname, 60000);
    await waitReady(child);
    assert.ok(xdpState(pair.a.netns, pair.a.ifname).attached !== 0, 'attached while running');
    child.kill('SIGKILL');
    await new Promise((r) => child.on('exit', r));
    assert.is(await waitDetached(pair.a.netns, pair.a.ifname), 0);
  });
});

test('open/close cycles leak no fd and leave nothing attached', async () => {
  await withVeth('td', { queues: 2 }, async (pair) => {
    const before = openFds();
    for (let i = 0; i < 5; i++) openBackend(pair.a.netns, `af-xdp,id=n,ifname=${pair.a.ifname},queues=2`).close();
    assert.is(openFds(), before);
    assert.is(xdpState(pair.a.netns, pair.a.ifname).attached, 0);
  });
});

test('close twice is harmless', async () => {
  await withVeth('td', {}, async (pair) => {
    const b = openBackend(pair.a.netns, `af-xdp,id=n,ifname=${pair.a.ifname}`);
    b.close();
    b.close();
    assert.is(xdpState(pair.a.netns, pair.a.ifname).attached, 0);
  });
});

test.run();
