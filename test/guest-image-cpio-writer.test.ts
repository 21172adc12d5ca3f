// The initramfs cpio writer: what it writes reads back with GNU cpio (names,
// types, modes, symlink targets, device numbers, file contents), the archive
// is padded to 512 bytes, and bad names are refused.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readlinkSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CpioError, CpioWriter, type CpioEntry } from '../src/guest-build/linux/cpio';
import { InitramfsLayout } from '../src/guest-build/linux/initramfs';

async function archive(entries: CpioEntry[]): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  const w = new CpioWriter((c) => {
    chunks.push(Buffer.from(c));
  });
  for (const e of entries) await w.add(e);
  await w.finish();
  const buf = Buffer.concat(chunks);
  assert.is(buf.length, w.bytesWritten);
  return buf;
}

const odd = Buffer.from('seven b'); // 7 bytes: data padding is exercised
const big = Buffer.alloc(100_003, 0x5a);
const ENTRIES: CpioEntry[] = [
  { name: '/', kind: 'dir', mode: 0o755 },
  { name: '/bin', kind: 'dir', mode: 0o755 },
  { name: '/bin/tool', kind: 'file', mode: 0o755, data: odd },
  { name: '/bin/sh', kind: 'symlink', target: 'tool' },
  { name: '/etc', kind: 'dir', mode: 0o755 },
  { name: '/etc/empty', kind: 'file', mode: 0o600, data: new Uint8Array(0) },
  { name: '/etc/a-longer-file-name-with-odd-length.txt', kind: 'file', mode: 0o644, data: big },
  { name: '/tmp', kind: 'dir', mode: 0o1777 },
  { name: '/dev', kind: 'dir', mode: 0o755 },
  { name: '/dev/console', kind: 'char', mode: 0o600, major: 5, minor: 1 },
];

test('cpio -t lists every entry in order', async () => {
  const buf = await archive(ENTRIES);
  const names = execFileSync('cpio', ['-t', '--quiet'], { input: buf, encoding: 'utf8' }).trim().split('\n');
  assert.equal(names, ENTRIES.map((e) => (e.name === '/' ? '.' : e.name.slice(1))));
});

test('cpio -tv: types, modes, sizes, symlink target, device numbers', async () => {
  const buf = await archive(ENTRIES);
  const lines = execFileSync('cpio', ['-tv', '--quiet'], { input: buf, encoding: 'utf8' }).trim().split('\n');
  const find = (n: string): string => lines.find((l) => l.endsWith(` ${n}`) || l.includes(` ${n} -> `)) ?? '';
  assert.match(find('bin/tool'), /^-rwxr-xr-x .* 7 /);
  assert.match(find('bin/sh'), /^lrwxrwxrwx .* bin\/sh -> tool$/);
  assert.match(find('tmp'), /^drwxrwxrwt /);
  assert.match(find('dev/console'), /^crw------- .*5,\s+1 /);
  assert.match(find('etc/a-longer-file-name-with-odd-length.txt'), / 100003 /);
});

test('extracted with cpio -i, the files hold what was written', async () => {
  const buf = await archive(ENTRIES.filter((e) => e.kind !== 'char'));
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cpio-rt-'));
  try {
    const r = spawnSync('cpio', ['-idm', '--quiet', '--no-absolute-filenames'], { input: buf, cwd: dir });
    assert.is(r.status, 0, r.stderr.toString());
    assert.equal(readFileSync(path.join(dir, 'bin/tool')), odd);
    assert.equal(readFileSync(path.join(dir, 'etc/a-longer-file-name-with-odd-length.txt')), big);
    assert.is(readFileSync(path.join(dir, 'etc/empty')).length, 0);
    assert.is(readlinkSync(path.join(dir, 'bin/sh')), 'tool');
    assert.is(statSync(path.join(dir, 'bin/tool')).mode & 0o777, 0o755);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('newc framing: magic, 4-byte alignment, trailer, 512-byte padding', async () => {
  const buf = await archive(ENTRIES);
  assert.is(buf.length % 512, 0);
  assert.is(buf.subarray(0, 6).toString('ascii'), '070701');
  let off = 0;
  let last = '';
  while (off < buf.length) {
    assert.is(buf.subarray(off, off + 6).toString('ascii'), '070701', `header at ${off}`);
    const field = (i: number): number => parseInt(buf.subarray(off + 6 + i * 8, off + 14 + i * 8).toString('ascii'), 16);
    const size = field(6);
    const nameLen = field(11);
    last = buf.subarray(off + 110, off + 110 + nameLen - 1).toString('utf8');
    off += 110 + nameLen;
    off += (4 - (off % 4)) % 4;
    off += size;
    off += (4 - (off % 4)) % 4;
    if (last === 'TRAILER!!!') break;
  }
  assert.is(last, 'TRAILER!!!');
  assert.ok(buf.subarray(off).every((b) => b === 0), 'only zero padding after the trailer');
});

test('bad names are refused', async () => {
  const w = new CpioWriter(() => undefined);
  for (const name of ['', 'a/../b', 'TRAILER!!!']) {
    try {
      await w.add({ name, kind: 'dir', mode: 0o755 });
      assert.unreachable(name);
    } catch (e) {
      assert.ok(e instanceof CpioError, `${name}: ${(e as Error).message}`);
    }
  }
});

test('initramfs layout: parents created, root first, path order, duplicates refused', () => {
  const l = new InitramfsLayout();
  l.data('/usr/lib/x/y.so', 'abc');
  l.symlink('/lib', 'usr/lib');
  l.charDevice('/dev/null', 1, 3, 0o666);
  const names = [...l.entries()].map((e) => e.name);
  assert.equal(names, ['/', '/dev', '/dev/null', '/lib', '/usr', '/usr/lib', '/usr/lib/x', '/usr/lib/x/y.so']);
  assert.throws(() => l.symlink('/usr/lib/x/y.so', 'other'), /added twice/);
  l.data('/usr/lib/x/y.so', 'abc'); // the same thing twice is fine
});

test.run();
