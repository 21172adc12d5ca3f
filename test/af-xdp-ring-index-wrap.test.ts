// XSK ring indices are free-running u32s the kernel and we share: our side
// keeps them as int32 (the same bits), so counts, slots and the indices we
// publish stay right where they pass 2^31 and where they wrap at 2^32.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ConsumerRing, ProducerRing } from '../src/backend/af-xdp/xsk-ring';

const SIZE = 16;
const OFFSETS = { producer: 0, consumer: 4, flags: 8, desc: 64 };

function ringMemory(start: number): { buffer: ArrayBuffer; u32: Uint32Array } {
  const buffer = new ArrayBuffer(64 + SIZE * 16);
  const u32 = new Uint32Array(buffer);
  u32[0] = start;
  u32[1] = start;
  return { buffer, u32 };
}

for (const start of [0x7fff_fff8, 0xffff_fff8]) {
  const at = `0x${start.toString(16)}`;

  test(`producer ring from index ${at}: free slots, slots and the published producer across the boundary`, () => {
    const m = ringMemory(start);
    const ring = new ProducerRing(m.buffer, OFFSETS, SIZE, 16);
    assert.is(ring.free(SIZE), SIZE);
    assert.is(ring.slot(0), start % SIZE);
    for (let round = 0; round < 5; round++) {
      ring.submit(12);
      const prod = (start + 12 * (round + 1)) % 2 ** 32;
      assert.is(m.u32[0], prod, `round ${round}: the kernel sees the u32 producer`);
      assert.is(ring.pending(), 12);
      assert.is(ring.free(1), SIZE - 12);
      assert.is(ring.slot(1), (prod + 1) % SIZE);
      // The kernel consumes them.
      m.u32[1] = prod;
      assert.is(ring.pending(), 0);
      assert.is(ring.free(SIZE), SIZE);
      assert.is(ring.occupancy(), 0);
    }
  });

  test(`consumer ring from index ${at}: entries ready, slots and the released consumer across the boundary`, () => {
    const m = ringMemory(start);
    const ring = new ConsumerRing(m.buffer, OFFSETS, SIZE, 16);
    assert.is(ring.available(SIZE), 0);
    let prod = start;
    for (let round = 0; round < 5; round++) {
      prod = (prod + 10) % 2 ** 32;
      m.u32[0] = prod;
      assert.is(ring.available(SIZE), 10, `round ${round}: entries across the boundary`);
      assert.is(ring.available(4), 4);
      assert.is(ring.slot(9), (prod - 1) % SIZE);
      ring.release(10);
      assert.is(m.u32[1], prod, 'the kernel sees the u32 consumer');
      assert.is(ring.available(SIZE), 0);
      assert.is(ring.refresh(SIZE), 0);
    }
  });
}

test.run();
