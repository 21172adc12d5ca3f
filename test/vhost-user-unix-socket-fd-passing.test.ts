// The native unix socket layer under the vhost-user server: listening (a
// stale socket file is replaced, any other file is left alone), fd passing
// with SCM_RIGHTS (close-on-exec on arrival), too many fds (an error, and
// the ones that arrived are closed), waking a pending receive, EOF.
import { closeSync, existsSync, openSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { unixSocket } from '../src/vhost-user/unix-socket';
import { openFds } from './support/fd-count';
import { sys } from '../src/native/sys';

const EFD_NONBLOCK = 0o4000;
const sockPath = path.join(tmpdir(), `xdpvm-unix-${process.pid}.sock`);

function cloexec(fd: number): boolean {
  const flags = /flags:\s+([0-7]+)/.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))![1]!;
  return (parseInt(flags, 8) & 0o2000000) !== 0;
}

async function pair(): Promise<{ listen: number; server: number; client: number; wake: number }> {
  const listen = unixSocket.unixListen(sockPath, 2);
  const wake = sys.eventfdCreate(0, EFD_NONBLOCK);
  const accepted = unixSocket.unixAcceptAsync(listen, wake);
  const client = unixSocket.unixConnect(sockPath);
  const server = await accepted;
  assert.ok(server >= 0);
  return { listen, server, client, wake };
}

function closeAll(...fds: number[]): void {
  for (const fd of fds) sys.close(fd);
}

test('a stale socket file is replaced; a regular file is never deleted', () => {
  const a = unixSocket.unixListen(sockPath, 1);
  sys.close(a); // the socket file stays behind, stale
  const b = unixSocket.unixListen(sockPath, 1);
  sys.close(b);
  unlinkSync(sockPath);
  writeFileSync(sockPath, 'precious');
  assert.throws(() => unixSocket.unixListen(sockPath, 1), /not a socket/);
  assert.is(readFileSync(sockPath, 'utf8'), 'precious');
  unlinkSync(sockPath);
  assert.throws(() => unixSocket.unixListen(`/tmp/${'x'.repeat(120)}`, 1), /ENAMETOOLONG|name too long/i);
});

test('bytes and fds arrive together, close-on-exec', async () => {
  const before = openFds();
  const { listen, server, client, wake } = await pair();
  const efds = [sys.eventfdCreate(0, EFD_NONBLOCK), sys.eventfdCreate(0, EFD_NONBLOCK), sys.eventfdCreate(0, EFD_NONBLOCK)];
  unixSocket.unixSend(client, new Uint8Array([1, 2, 3, 4]), efds, 1000);
  const r = await unixSocket.unixRecvAsync(server, 16, 8, wake);
  assert.equal([...r.bytes], [1, 2, 3, 4]);
  assert.is(r.fds.length, 3);
  for (const [i, fd] of r.fds.entries()) {
    assert.ok(cloexec(fd), `received fd ${fd} is close-on-exec`);
    sys.eventfdWrite(fd, i + 1);
    assert.is(sys.eventfdRead(efds[i]!), i + 1, 'the same eventfd');
  }
  // Too many fds for the receiver: an error, and nothing stays open.
  const n = openFds();
  unixSocket.unixSend(client, new Uint8Array([9]), efds, 1000);
  try {
    await unixSocket.unixRecvAsync(server, 16, 2, wake);
    assert.unreachable('more fds than allowed must be refused');
  } catch (e) {
    assert.is((e as { code?: string }).code, 'EMSGSIZE');
  }
  assert.is(openFds(), n, 'the fds that did arrive were closed');
  // A pending receive ends when the wake fd fires.
  const pending = unixSocket.unixRecvAsync(server, 16, 8, wake);
  sys.eventfdWrite(wake, 1);
  assert.ok((await pending).woken);
  sys.eventfdRead(wake);
  // EOF.
  sys.close(client);
  const eof = await unixSocket.unixRecvAsync(server, 16, 8, wake);
  assert.ok(eof.eof);
  closeAll(...r.fds, ...efds, server, listen, wake);
  unlinkSync(sockPath);
  assert.is(openFds(), before);
});

test('fd helpers: memfd info and seals, non-blocking, unaligned offsets refused', () => {
  const m = sys.guestMemoryMemfd(1 << 16, false, 'unix-test');
  const info = unixSocket.fdInfo(m.fd);
  assert.is(info.kind, 'file');
  assert.is(info.size, 1 << 16);
  // This memfd was made without MFD_ALLOW_SEALING: F_SEAL_SEAL is set, so no seal can be added (and it says so).
  assert.is(info.seals & 0x1, 0x1);
  assert.not.ok(unixSocket.fdAddSeals(m.fd, 0x2));
  assert.throws(() => unixSocket.mapSharedFd(m.fd, 100, 4096), /out of range/);
  const map = unixSocket.mapSharedFd(m.fd, 4096, 4096);
  new Uint8Array(map)[0] = 7;
  assert.is(new Uint8Array(m.buffer)[4096], 7, 'the same pages');
  sys.unmap(map);
  const f = openSync('/dev/null', 'r');
  assert.is(unixSocket.fdInfo(f).kind, 'other');
  closeSync(f);
  sys.unmap(m.buffer);
  sys.close(m.fd);
  assert.not.ok(existsSync(sockPath));
});

test.run();
