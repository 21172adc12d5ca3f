// Every setup error the contract lists fails with its own message and leaves
// nothing attached and no fd open.
import { execFileSync, spawnSync } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { xdpState } from '../src/host/netns';
import { xsk } from '../src/native/xsk';
import { sys } from '../src/native/sys';
import { openFds } from './support/fd-count';
import { openBackend, withVeth } from './support/veth-backends';
import { repoRoot } from '../src/repo-root';
import { nobodyTest } from './support/unprivileged';

const root = repoRoot();

async function expectSetupError(
  spec: (ifname: string) => string,
  message: RegExp,
  prepare?: (ns: string, ifname: string) => () => void,
  fdsHandedIn = 0,
): Promise<void> {
  await withVeth('err', {}, async (pair) => {
    const cleanup = prepare?.(pair.a.netns, pair.a.ifname);
    try {
      const before = openFds();
      try {
        openBackend(pair.a.netns, spec(pair.a.ifname)).close();
        assert.unreachable('setup succeeded');
      } catch (e) {
        assert.match((e as Error).message, message);
      }
      assert.is(openFds(), before - fdsHandedIn, 'no fd left open (handed-in sockets closed)');
      if (!cleanup) assert.is(xdpState(pair.a.netns, pair.a.ifname).attached, 0, 'nothing left attached');
    } finally {
      cleanup?.();
    }
  });
}

test('unknown interface', async () => {
  await expectSetupError(() => 'af-xdp,id=n,ifname=nosuchif0', /'ifname': no interface named 'nosuchif0'/);
});

test('a queue the interface does not have', async () => {
  await expectSetupError((i) => `af-xdp,id=n,ifname=${i},start-queue=5`, /queue 5: bind failed: no such queue/);
});

test('queues beyond the interface after the first one succeeded (partial setup undone)', async () => {
  await expectSetupError((i) => `af-xdp,id=n,ifname=${i},queues=3`, /queue 1: bind failed/);
});

test('sock-fds naming a closed fd', async () => {
  await expectSetupError((i) => `af-xdp,id=n,ifname=${i},inhibit=on,sock-fds=987`, /fd 987 is not open/);
});

test('sock-fds naming something that is not a socket', async () => {
  const fd = sys.netnsOpen('/proc/self/ns/net');
  try {
    await expectSetupError((i) => `af-xdp,id=n,ifname=${i},inhibit=on,sock-fds=${fd}`, new RegExp(`fd ${fd} is not a socket`));
  } finally {
    sys.close(fd);
  }
});

test('sock-fds naming a socket that is not AF_XDP', async () => {
  const server: Server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const fd = (server as unknown as { _handle: { fd: number } })._handle.fd;
  try {
    await expectSetupError((i) => `af-xdp,id=n,ifname=${i},inhibit=on,sock-fds=${fd}`, new RegExp(`fd ${fd} is not an AF_XDP socket`));
  } finally {
    server.close();
  }
});

test('inhibit=on with no XDP program on the interface', async () => {
  const sock = xsk.socket();
  // The backend takes ownership of handed-in sockets once the options are valid, and closes them on failure.
  await expectSetupError((i) => `af-xdp,id=n,ifname=${i},inhibit=on,sock-fds=${sock}`, /no XDP program is attached/, undefined, 1);
  assert.not.ok(sys.fdIsOpen(sock), 'handed-in socket closed on failure');
});

test('another program already attached', async () => {
  await expectSetupError(
    (i) => `af-xdp,id=n,ifname=${i},mode=native`,
    /another XDP program \(id \d+\) is already attached/,
    (ns, ifname) => {
      const first = openBackend(ns, `af-xdp,id=first,ifname=${ifname},mode=native`);
      return () => first.close();
    },
  );
});

nobodyTest('RLIMIT_MEMLOCK too small for the UMEM (unprivileged process)', () => {
  // As root we hold CAP_IPC_LOCK and are never limited: run the check as nobody, no capabilities.
  const script = `
    const { AfXdpBackend } = require(${JSON.stringify(path.join(root, 'dist/src/backend/af-xdp/af-xdp-backend.js'))});
    const { parseAfXdpOptions } = require(${JSON.stringify(path.join(root, 'dist/src/backend/af-xdp/af-xdp-options.js'))});
    try { AfXdpBackend.open(parseAfXdpOptions('af-xdp,id=n,ifname=lo,queues=2')); console.log('opened'); }
    catch (e) { console.log(e.message); }`;
  const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', '--bounding-set=-all', '--', process.execPath, '-e', script], { encoding: 'utf8' });
  assert.match(r.stdout, /'queues=2' needs 64 MiB of locked memory for its UMEMs but RLIMIT_MEMLOCK is \d+ MiB; raise it/, r.stdout + r.stderr);
});

test('after all of that, no namespace of ours is left', () => {
  const left = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n').filter((l) => l.includes(`-${process.pid}-`));
  assert.equal(left, []);
});

test.run();
