// mapAnonymous takes the page size its caller chose: 4 KiB pages, or a
// 2 MiB-aligned region advised for transparent huge pages; nothing else.
import * as assert from 'uvu/assert';
import { test } from 'uvu';
import { readFileSync } from 'node:fs';
import { sys } from '../src/native/sys';

const MIB = 1 << 20;

/** AnonHugePages (kB) of the mapping that starts at `address`, from /proc/self/smaps. */
function anonHugeKb(address: bigint): number {
  const smaps = readFileSync('/proc/self/smaps', 'utf8');
  const start = smaps.indexOf(`${address.toString(16)}-`);
  assert.ok(start >= 0, 'the mapping is in smaps');
  const m = /^AnonHugePages:\s+(\d+) kB$/m.exec(smaps.slice(start, smaps.indexOf('VmFlags', start)));
  return Number(m?.[1] ?? 0);
}

test('thp: 2 MiB-aligned, zeroed, writable', () => {
  const ab = sys.mapAnonymous(4 * MIB, 'thp');
  try {
    assert.is(sys.addressOf(ab) % BigInt(2 * MIB), 0n);
    const v = new Uint8Array(ab);
    assert.ok(v.every((b) => b === 0));
    v[3 * MIB] = 9;
    assert.is(v[3 * MIB], 9);
  } finally {
    sys.unmap(ab);
  }
});

test('base: no huge pages where THP is only on request', () => {
  const mode = readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8');
  const ab = sys.mapAnonymous(4 * MIB, 'base');
  try {
    assert.ok(new Uint8Array(ab).every((b) => b === 0));
    if (mode.includes('[always]')) console.log('# THP is [always] here: the kernel may back even a base mapping with huge pages');
    else assert.is(anonHugeKb(sys.addressOf(ab)), 0);
  } finally {
    sys.unmap(ab);
  }
});

test('an unknown page kind or no kind is a TypeError, nothing mapped', () => {
  assert.throws(() => sys.mapAnonymous(MIB, 'huge' as 'thp'), (e: Error) => e instanceof TypeError && /pages must be/.test(e.message));
  assert.throws(() => (sys.mapAnonymous as (n: number) => ArrayBuffer)(MIB), TypeError);
});

test.run();
