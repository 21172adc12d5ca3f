// Hostile front ends: every malformed message gets a failing REPLY_ACK
// (when the front end negotiated REPLY_ACK and asked for one) or a closed
// connection; the server never crashes, never maps or leaks anything it
// refused, closes every fd that came with a refused message, and keeps
// serving the next front end.
import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { GuestRam } from '../src/kvm/memory';
import { encodeMessage, u64Payload, vringStatePayload } from '../src/vhost-user/message';
import { HeaderFlags, Request } from '../src/vhost-user/protocol';
import { openFds } from './support/fd-count';
import { frameSeq, frameTag, makeFrame } from './support/frames';
import { receive, sleep } from './support/queue-traffic';
import { FRONT_PROTOCOL, FrontGuest, USER_BASE, VhostUserFrontEnd } from './support/vhost-user-front-end';
import { withVhostUser, type VhostUserRig } from './support/vhost-user-rig';
import { sys } from '../src/native/sys';

const MEM = 1 << 20;

function mappingsOf(name: string): number {
  return readFileSync('/proc/self/maps', 'utf8')
    .split('\n')
    .filter((l) => l.includes(`/memfd:${name} `) || l.endsWith(`/memfd:${name}`) || l.includes(`/memfd:${name} (deleted)`)).length;
}

async function until(cond: () => boolean, timeoutMs = 3000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) return false;
    await sleep(5);
  }
  return true;
}

/** A connection with REPLY_ACK negotiated. */
async function acked(rig: VhostUserRig): Promise<VhostUserFrontEnd> {
  const f = await VhostUserFrontEnd.connect(rig.socketPath);
  const proto = (await f.call(Request.GET_PROTOCOL_FEATURES)).u64();
  f.send(Request.SET_PROTOCOL_FEATURES, u64Payload(proto & FRONT_PROTOCOL));
  return f;
}

const state = vringStatePayload;

function configOf(size: number): Uint8Array {
  const b = new Uint8Array(12 + size);
  new DataView(b.buffer).setUint32(4, size, true);
  return b;
}
const kickArg = (index: number, noFd = false): Uint8Array => u64Payload(BigInt(index) | (noFd ? 0x100n : 0n));

test('refused with REPLY_ACK: the connection stays up, nothing is mapped or leaked', async () => {
  await withVhostUser('vum', { config: true }, async (rig) => {
    const fdsBefore = openFds();
    const ram = GuestRam.allocate(MEM, { memfd: 'vu-malformed-a' });
    const small = GuestRam.allocate(64 << 10, { memfd: 'vu-malformed-small' });
    const efd = sys.eventfdCreate(0, 0);
    const f = await acked(rig);
    try {
      const region = (gpa: number, size: number, user: bigint, off = 0): { gpa: number; size: number; userAddr: bigint; mmapOffset: number } => ({
        gpa,
        size,
        userAddr: user,
        mmapOffset: off,
      });
      const table = VhostUserFrontEnd.memTable;
      const refused: [string, number, Uint8Array, number[]][] = [
        ['unknown request', 99, new Uint8Array(0), []],
        ['SET_FEATURES with a short payload', Request.SET_FEATURES, new Uint8Array(4), []],
        ['SET_LOG_BASE (no dirty logging)', Request.SET_LOG_BASE, u64Payload(0n), [efd]],
        ['SET_LOG_FD', Request.SET_LOG_FD, new Uint8Array(0), [efd]],
        ['SET_MEM_TABLE with 9 regions', Request.SET_MEM_TABLE, table(Array.from({ length: 8 }, (_, i) => region(i * MEM, MEM, USER_BASE + BigInt(i * MEM))), 9), [ram.fd]],
        ['SET_MEM_TABLE with 0 regions', Request.SET_MEM_TABLE, table([], 0), []],
        ['SET_MEM_TABLE, 2 regions and 1 fd', Request.SET_MEM_TABLE, table([region(0, MEM / 2, USER_BASE), region(MEM, MEM / 2, USER_BASE + BigInt(MEM), MEM / 2)]), [ram.fd]],
        ['SET_MEM_TABLE, overlapping guest ranges', Request.SET_MEM_TABLE, table([region(0, MEM / 2, USER_BASE), region(MEM / 4, MEM / 2, USER_BASE + BigInt(MEM))]), [ram.fd, ram.fd]],
        ['SET_MEM_TABLE, overlapping user ranges', Request.SET_MEM_TABLE, table([region(0, MEM / 2, USER_BASE), region(MEM, MEM / 2, USER_BASE + 4096n)]), [ram.fd, ram.fd]],
        ['SET_MEM_TABLE, region larger than its file', Request.SET_MEM_TABLE, table([region(0, MEM, USER_BASE), region(MEM, MEM, USER_BASE + BigInt(MEM))]), [ram.fd, small.fd]],
        ['SET_MEM_TABLE, mmap offset past the file', Request.SET_MEM_TABLE, table([region(0, 4096, USER_BASE, MEM)]), [ram.fd]],
        ['SET_MEM_TABLE, an eventfd as memory', Request.SET_MEM_TABLE, table([region(0, 4096, USER_BASE)]), [efd]],
        ['SET_MEM_TABLE, size 0', Request.SET_MEM_TABLE, table([region(0, 0, USER_BASE)]), [ram.fd]],
        ['SET_MEM_TABLE, guest range past 2^53', Request.SET_MEM_TABLE, table([region(2 ** 53 - 4096, MEM, USER_BASE)]), [ram.fd]],
        ['SET_MEM_TABLE, unaligned guest address', Request.SET_MEM_TABLE, table([region(4, 4096, USER_BASE)]), [ram.fd]],
        ['SET_MEM_TABLE, payload not matching its count', Request.SET_MEM_TABLE, table([region(0, MEM, USER_BASE)], 2).subarray(0, 30), [ram.fd]],
        ['SET_VRING_NUM, index out of range', Request.SET_VRING_NUM, state(2, 256), []],
        ['SET_VRING_NUM, index 255', Request.SET_VRING_NUM, state(255, 256), []],
        ['SET_VRING_NUM, not a power of 2', Request.SET_VRING_NUM, state(0, 100), []],
        ['SET_VRING_NUM, too large', Request.SET_VRING_NUM, state(0, 65536), []],
        ['SET_VRING_BASE, not a u16', Request.SET_VRING_BASE, state(0, 0x10000), []],
        ['SET_VRING_ENABLE 2', Request.SET_VRING_ENABLE, state(0, 2), []],
        ['SET_VRING_ADDR before any memory table', Request.SET_VRING_ADDR, VhostUserFrontEnd.vringAddr(0, USER_BASE, USER_BASE + 0x2000n, USER_BASE + 0x1000n), []],
        ['SET_VRING_KICK, fd and the no-fd flag', Request.SET_VRING_KICK, kickArg(0, true), [efd]],
        ['SET_VRING_KICK, no fd without the flag', Request.SET_VRING_KICK, kickArg(0), []],
        ['SET_VRING_KICK, two fds', Request.SET_VRING_KICK, kickArg(0), [efd, efd]],
        ['SET_VRING_KICK, a memfd as kick', Request.SET_VRING_KICK, kickArg(0), [ram.fd]],
        ['SET_VRING_CALL, index out of range', Request.SET_VRING_CALL, kickArg(7), [efd]],
        ['SET_VRING_ERR, unknown bits', Request.SET_VRING_ERR, u64Payload(0x1000n), [efd]],
        ['SET_CONFIG, size beyond 256', Request.SET_CONFIG, configOf(300), []],
        ['SET_CONFIG, size not matching the payload', Request.SET_CONFIG, configOf(8).subarray(0, 14), []],
      ];
      for (const [what, request, payload, fds] of refused) {
        const v = await f.ack(request, payload, fds);
        assert.is(v, 1n, `${what}: expected a failing REPLY_ACK, got ${String(v)}`);
      }
      assert.is(mappingsOf('vu-malformed-a'), 1, 'no refused table left a mapping (only the front end maps it)');
      assert.is(mappingsOf('vu-malformed-small'), 1);

      // A good table, then ring addresses against it.
      assert.is(await f.ack(Request.SET_MEM_TABLE, table([region(0, MEM, USER_BASE)]), [ram.fd]), 0n);
      assert.is(mappingsOf('vu-malformed-a'), 2, 'the accepted table is mapped');
      assert.is(await f.ack(Request.SET_VRING_NUM, state(0, 256)), 0n);
      const addr = (d: bigint, a: bigint, u: bigint, flags = 0): Uint8Array => VhostUserFrontEnd.vringAddr(0, d, u, a, flags);
      for (const [what, payload] of [
        ['descriptors outside the table', addr(USER_BASE + BigInt(MEM), USER_BASE + 0x1000n, USER_BASE + 0x2000n)],
        ['used ring running past the table', addr(USER_BASE, USER_BASE + 0x1000n, USER_BASE + BigInt(MEM) - 16n)],
        ['avail ring below the table', addr(USER_BASE, USER_BASE - 0x1000n, USER_BASE + 0x2000n)],
        ['a user address near 2^64', addr(0xffff_ffff_ffff_f000n, USER_BASE + 0x1000n, USER_BASE + 0x2000n)],
        ['misaligned descriptor table', addr(USER_BASE + 8n, USER_BASE + 0x1000n, USER_BASE + 0x2000n)],
        ['misaligned used ring', addr(USER_BASE, USER_BASE + 0x1000n, USER_BASE + 0x2002n)],
        ['dirty logging flag', addr(USER_BASE, USER_BASE + 0x1000n, USER_BASE + 0x2000n, 1)],
      ] as const) {
        assert.is(await f.ack(Request.SET_VRING_ADDR, payload), 1n, what);
      }
      assert.is(await f.ack(Request.SET_VRING_ADDR, addr(USER_BASE, USER_BASE + 0x1000n, USER_BASE + 0x2000n)), 0n, 'in-table addresses');

      // Fds on a message that takes none are closed, the message itself is fine.
      assert.is(await f.ack(Request.SET_OWNER, new Uint8Array(0), [efd, efd, efd]), 0n);
      // And the connection still answers.
      assert.ok((await f.call(Request.GET_FEATURES)).u64() > 0n);
    } finally {
      f.close();
    }
    assert.ok(await until(() => rig.server.connection === undefined), 'connection closed');
    assert.is(mappingsOf('vu-malformed-a'), 1, 'the table was unmapped when the front end left');
    ram.release();
    small.release();
    sys.close(efd);
    assert.is(openFds(), fdsBefore, 'every fd that came in was closed');
  });
});

test('unrecoverable messages close the connection; the server then serves the next front end', async () => {
  await withVhostUser('vum2', {}, async (rig) => {
    const fdsBefore = openFds();
    const efd = sys.eventfdCreate(0, 0);
    const header = (request: number, flags: number, size: number): Uint8Array => {
      const b = new Uint8Array(12);
      const v = new DataView(b.buffer);
      v.setUint32(0, request, true);
      v.setUint32(4, flags, true);
      v.setUint32(8, size, true);
      return b;
    };
    const cases: [string, (f: VhostUserFrontEnd) => Promise<void> | void, boolean][] = [
      ['a short header, then EOF', (f) => f.sendRaw(new Uint8Array([1, 0, 0, 0, 1])), false],
      ['a payload size of 1 MiB', (f) => f.sendRaw(header(Request.SET_FEATURES, 1, 1 << 20)), true],
      ['protocol version 2', (f) => f.sendRaw(encodeMessage(Request.GET_FEATURES, 2)), true],
      ['the reply flag on a request', (f) => f.sendRaw(encodeMessage(Request.GET_FEATURES, HeaderFlags.Version | HeaderFlags.Reply)), true],
      ['9 fds with one message', (f) => f.sendRaw(encodeMessage(Request.SET_OWNER, 1), Array.from({ length: 9 }, () => efd)), true],
      ['an unknown request without REPLY_ACK', (f) => f.send(77), true],
      ['a bad vring index without REPLY_ACK', (f) => f.send(Request.SET_VRING_NUM, state(9, 256)), true],
      ['GET_VRING_BASE of a vring that does not exist', (f) => f.send(Request.GET_VRING_BASE, state(9, 0)), true],
      ['SET_VRING_KICK with a non-eventfd and no REPLY_ACK', (f) => f.send(Request.SET_VRING_KICK, kickArg(0), [1]), true],
      ['a payload cut short, then EOF', (f) => f.sendRaw(header(Request.SET_VRING_ADDR, 1, 40).slice(0, 12)), false],
    ];
    for (const [i, [what, send, serverCloses]] of cases.entries()) {
      const f = await VhostUserFrontEnd.connect(rig.socketPath);
      await send(f);
      if (serverCloses) assert.ok(await f.closedByPeer(), `${what}: the server closed the connection`);
      f.close();
      assert.ok(await until(() => rig.server.connection === undefined && rig.server.history.length === i + 1), `${what}: connection done`);
    }
    sys.close(efd);
    await sleep(20);
    assert.is(openFds(), fdsBefore, 'no fd left behind by the broken connections');

    // The server is still there and serves a well-behaved front end end to end.
    const f = await VhostUserFrontEnd.connect(rig.socketPath);
    const g = new FrontGuest(f);
    try {
      await g.setUp();
      assert.ok(await until(() => rig.server.runner.isRunning(0)));
      const frames = Array.from({ length: 10 }, (_, i) => makeFrame(i, 64, 5));
      g.transmit(frames);
      const got = await receive(rig.peer.queues[0]!, 10, 3000, (fr) => frameSeq(fr) >= 0 && frameTag(fr) === 5);
      assert.is(got.length, 10);
    } finally {
      f.close();
      await until(() => rig.server.connection === undefined);
      g.release();
    }
  });
});

test.run();
