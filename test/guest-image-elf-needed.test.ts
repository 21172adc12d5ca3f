// The image builder's ELF reader: DT_NEEDED, DT_SONAME, DT_RUNPATH and
// PT_INTERP of real binaries agree with readelf; non-ELF and truncated input
// are refused with an ElfError.
import { execFileSync } from 'node:child_process';
import { readFileSync, realpathSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ElfError, ET_DYN, isElf, readElf, readElfFile } from '../src/guest-build/linux/elf';

function readelfDynamic(file: string): { needed: string[]; soname?: string; runpath: string[] } {
  const out = execFileSync('readelf', ['-dW', file], { encoding: 'utf8' });
  const grab = (tag: string): string[] => [...out.matchAll(new RegExp(`\\(${tag}\\)\\s+[^\\[]*\\[([^\\]]*)\\]`, 'g'))].map((m) => m[1]!);
  return { needed: grab('NEEDED'), soname: grab('SONAME')[0], runpath: grab('RUNPATH').flatMap((r) => r.split(':')) };
}

function readelfInterp(file: string): string | undefined {
  const out = execFileSync('readelf', ['-lW', file], { encoding: 'utf8' });
  return /\[Requesting program interpreter: ([^\]]+)\]/.exec(out)?.[1];
}

const BINARIES = ['/bin/ls', '/usr/bin/node', '/bin/bash', '/usr/bin/qemu-system-x86_64'];

test('DT_NEEDED and PT_INTERP of /bin/ls match readelf', () => {
  const info = readElfFile('/bin/ls');
  const ref = readelfDynamic('/bin/ls');
  assert.ok(ref.needed.includes('libc.so.6'), 'readelf sees libc.so.6');
  assert.equal(info.needed, ref.needed);
  assert.is(info.interp, '/lib64/ld-linux-x86-64.so.2');
  assert.is(info.interp, readelfInterp('/bin/ls'));
  assert.is(info.machine, 62);
});

test('other host programs: same DT_NEEDED as readelf', () => {
  let checked = 0;
  for (const f of BINARIES) {
    let real: string;
    try {
      real = realpathSync(f);
    } catch {
      continue;
    }
    const info = readElfFile(real);
    const ref = readelfDynamic(real);
    assert.equal(info.needed, ref.needed, f);
    assert.equal(info.runpath, ref.runpath, `${f} runpath`);
    checked++;
  }
  assert.ok(checked >= 2, `checked ${checked} binaries`);
});

test('a shared library: DT_SONAME, no interpreter, ET_DYN', () => {
  const libc = realpathSync('/lib/x86_64-linux-gnu/libc.so.6');
  const info = readElfFile(libc);
  assert.is(info.soname, 'libc.so.6');
  assert.is(info.soname, readelfDynamic(libc).soname);
  assert.is(info.type, ET_DYN);
  assert.ok(info.needed.includes('ld-linux-x86-64.so.2'), info.needed.join(','));
});

test('not an ELF file: isElf false, readElf throws ElfError', () => {
  const script = readFileSync(__filename);
  assert.not.ok(isElf(script));
  assert.throws(() => readElf(script), (e: unknown) => e instanceof ElfError);
});

test('truncated ELF: ElfError, never a RangeError', () => {
  const ls = readFileSync('/bin/ls');
  for (const n of [4, 20, 63, 64, 200, 4096]) {
    try {
      readElf(ls.subarray(0, n));
    } catch (e) {
      assert.ok(e instanceof ElfError, `${n} bytes: ${(e as Error).name} ${(e as Error).message}`);
    }
  }
});

test('32-bit and big-endian ELF are refused clearly', () => {
  const ls = Buffer.from(readFileSync('/bin/ls'));
  const c32 = Buffer.from(ls);
  c32[4] = 1;
  assert.throws(() => readElf(c32), /64-bit/);
  const be = Buffer.from(ls);
  be[5] = 2;
  assert.throws(() => readElf(be), /little-endian/);
});

test.run();
