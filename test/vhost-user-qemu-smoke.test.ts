// Real QEMU (Debian's 7.2, TCG) as the front end: a Linux 6.1 guest's
// virtio_net driver negotiates with the server, QEMU sets up the rings
// (SET_MEM_TABLE with its memfd, vring addresses, kick/call fds, enable),
// the guest's ARP requests leave through the AF_XDP socket to the veth peer
// and the peer's kernel's replies come back into the guest. QEMU needs
// vectors=0 (INTx) for a vhost-user virtio-net-pci under TCG (MSI-X makes
// 7.2 crash) and shared guest memory (memory-backend-memfd,share=on).
import { spawn } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { skipTest } from './support/skip';
import { VethPair } from '../src/host/netns';
import { VhostUserServer } from '../src/vhost-user/server';
import { buildSmokeInitrd, SMOKE_KERNEL, smokeTestMissing } from './support/qemu-smoke-initrd';
import { openUnservicedBackend } from './support/veth-backends';
import { socketPathFor, xdpAttached } from './support/vhost-user-rig';

const missing = smokeTestMissing();

async function runQemu(args: string[], timeoutMs: number): Promise<{ out: string; code: number | null }> {
  const child = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString('latin1')));
  child.stderr.on('data', (b: Buffer) => (out += b.toString('latin1')));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  clearTimeout(timer);
  return { out, code };
}

const SMOKE_NAME = 'QEMU 7.2 + Linux virtio_net: negotiation, rings, frames both ways';
if (missing) skipTest(SMOKE_NAME, `${missing} is missing`);
else test(SMOKE_NAME, async () => {
  const pair = new VethPair('vuq');
  const initrd = buildSmokeInitrd();
  try {
    // The peer end answers the guest's ARP requests from its own stack.
    execFileSync('ip', ['-n', pair.b.netns, 'addr', 'add', '10.99.0.1/24', 'dev', pair.b.ifname]);
    const backend = openUnservicedBackend(pair.a.netns, `af-xdp,id=n0,ifname=${pair.a.ifname}`);
    const socketPath = socketPathFor('vuq');
    const log: string[] = [];
    const server = VhostUserServer.listen({ socketPath, backend, trace: true, log: (l) => void log.push(l) });
    let result: { out: string; code: number | null };
    try {
      result = await runQemu(
        [
          '-accel', 'tcg', '-machine', 'q35', '-m', '256', '-nodefaults', '-nographic', '-no-reboot', '-serial', 'stdio',
          '-object', 'memory-backend-memfd,id=mem,size=256M,share=on', '-numa', 'node,memdev=mem',
          '-chardev', `socket,id=c0,path=${socketPath}`,
          '-netdev', 'vhost-user,id=n0,chardev=c0',
          '-device', 'virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56,vectors=0',
          '-kernel', SMOKE_KERNEL, '-initrd', initrd.file, '-append', 'console=ttyS0 panic=-1 quiet',
        ],
        120_000,
      );
      await new Promise((r) => setTimeout(r, 200));
    } finally {
      await server.close();
      backend.close();
    }
    const { out } = result;
    const detail = `\n--- guest ---\n${out.slice(-2000)}\n--- server ---\n${log.join('\n')}`;
    assert.ok(out.includes('SMOKE-ETH0-UP 52:54:00:12:34:56'), `eth0 came up${detail}`);
    const m = /SMOKE-COUNTERS tx=(\d+) rx=(\d+)/.exec(out);
    assert.ok(m, `counters printed${detail}`);
    const guestTx = Number(m![1]);
    const guestRx = Number(m![2]);
    assert.ok(guestTx > 0, `the guest sent frames${detail}`);
    assert.ok(guestRx > 0, `the guest received the peer's ARP replies${detail}`);
    assert.ok(out.includes('SMOKE-DONE'), detail);
    // The protocol as QEMU spoke it: negotiated, table and rings set, nothing refused.
    for (const req of ['GET_FEATURES', 'SET_FEATURES', 'GET_PROTOCOL_FEATURES', 'SET_MEM_TABLE', 'SET_VRING_ADDR', 'SET_VRING_KICK', 'SET_VRING_CALL'])
      assert.ok(log.some((l) => l.includes(`vhost-user: ${req} `)), `QEMU sent ${req}${detail}`);
    assert.not.ok(log.some((l) => l.startsWith('vhost-user: refused')), `nothing refused${detail}`);
    const c = server.runner.counters(0)!;
    assert.ok(c.txFrames >= guestTx, `server moved the guest's frames: ${JSON.stringify(c)}`);
    assert.ok(c.rxFrames >= guestRx, `server delivered the replies: ${JSON.stringify(c)}`);
    const a = server.frameAccounting(0)!;
    assert.is(a.total, a.frameCount, 'every UMEM frame accounted for');
    assert.not.ok(xdpAttached(pair.a.netns, pair.a.ifname), 'no XDP program left');
  } finally {
    initrd.cleanup();
    pair.remove();
  }
});

test.run();
