// The memory table on its own: user addresses translate to guest-physical
// addresses region by region; a region's bytes are the file's bytes at its
// mmap offset (page-aligned or not); a region of 4 GiB or more is seen in
// 2 GiB-aligned pieces (a typed array holds less than 4 GiB); the workers'
// view matches; release() leaves no mapping.
import { closeSync, ftruncateSync, openSync, readFileSync, readSync, unlinkSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { MemoryTable } from '../src/vhost-user/memory-table';

const GiB = 2 ** 30;
const FILE = `/dev/shm/xdpvm-memtable-${process.pid}`;
const U = 0x7f00_0000_0000n;
const UB = 0x7e00_0000_0000n;

function readFileU32(fd: number, offset: number): number {
  const b = Buffer.alloc(4);
  readSync(fd, b, 0, 4, offset);
  return b.readUInt32LE(0);
}

function mappingsOfFile(): number {
  return readFileSync('/proc/self/maps', 'utf8')
    .split('\n')
    .filter((l) => l.includes(FILE)).length;
}

test('translation, file offsets, pieces of a region over 4 GiB, release', () => {
  const fd = openSync(FILE, 'w+');
  try {
    ftruncateSync(fd, 7 * GiB); // sparse: nothing is allocated until written
    const sizeB = 4 * GiB + 4096;
    const offB = 2 * GiB + 8; // not page-aligned
    const table = MemoryTable.map(
      [
        { guestAddr: 0n, size: BigInt(2 * GiB), userAddr: U, mmapOffset: 0n },
        { guestAddr: BigInt(4 * GiB), size: BigInt(sizeB), userAddr: UB, mmapOffset: BigInt(offB) },
      ],
      [fd, fd],
    );
    try {
      // Translation: inside a region, running past it, in the gap.
      assert.is(table.translate(U + 100n, 16), 100);
      assert.is(table.translate(UB + 12n, 8), 4 * GiB + 12);
      assert.is(table.translate(U + BigInt(2 * GiB) - 8n, 16), -1, 'runs past the end of region 0');
      assert.is(table.translate(U + BigInt(2 * GiB), 1), -1, 'nothing mapped there');
      assert.is(table.translate(UB - 1n, 2), -1);

      // Guest-physical accesses land at the file offsets the table gave.
      const m = table.memory;
      m.writeU32(100, 0x11223344);
      assert.is(readFileU32(fd, 100), 0x11223344);
      for (const gpa of [4 * GiB, 4 * GiB + 12, 6 * GiB + 40, 4 * GiB + sizeB - 4]) {
        m.writeU32(gpa, gpa % 0xffffffff);
        assert.is(readFileU32(fd, offB + (gpa - 4 * GiB)), gpa % 0xffffffff, `gpa 0x${gpa.toString(16)}`);
      }
      // Region 1 is cut at 6 GiB (a multiple of 2 GiB): three pieces; a range across the cut is refused.
      assert.is(m.regionCount, 4);
      assert.is(m.find(6 * GiB - 8, 16), -1);
      assert.ok(m.find(6 * GiB - 16, 16) >= 0 && m.find(6 * GiB, 16) >= 0);

      // The workers' view: page-aligned addresses, the remainder as an offset.
      const shared = table.shared();
      assert.is(shared.length, 4);
      for (const r of shared) {
        assert.is(r.address % 4096n, 0n);
        assert.ok((r.offset ?? 0) < 4096);
      }
      assert.equal(
        shared.map((r) => [r.gpa, r.length]),
        [
          [0, 2 * GiB],
          [4 * GiB, 2 * GiB],
          [6 * GiB, 2 * GiB],
          [8 * GiB, 4096],
        ],
      );
      assert.is(shared[1]!.offset, 8);
      assert.ok(mappingsOfFile() >= 2);
    } finally {
      table.release();
    }
    assert.is(mappingsOfFile(), 0, 'release() unmapped every region');

    // Too much memory in all (more than 4 TiB) is refused before anything is mapped.
    assert.throws(
      () =>
        MemoryTable.map(
          [
            { guestAddr: 0n, size: 2n ** 42n, userAddr: U, mmapOffset: 0n },
            { guestAddr: 2n ** 43n, size: 4096n, userAddr: UB, mmapOffset: 0n },
          ],
          [fd, fd],
        ),
      /at most 4 TiB/,
    );
    assert.is(mappingsOfFile(), 0);
  } finally {
    closeSync(fd);
    unlinkSync(FILE);
  }
});

test.run();
