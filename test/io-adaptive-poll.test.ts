// The idle I/O thread's poll bound adapts as QEMU's AioContext adapts
// poll_ns (util/aio-posix.c: grow when an event came just after the bound,
// shrink when it came after the maximum).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AdaptivePoll } from '../src/io/adaptive-poll';

test('an event a little after the bound grows it: from 0 to 4 µs, then doubling, never past the maximum', () => {
  const p = new AdaptivePoll(50);
  assert.is(p.us, 0, 'starts by sleeping at once');
  const seen: number[] = [];
  for (let i = 0; i < 5; i++) {
    p.idleEnded(Math.min(p.us + 1, 50));
    seen.push(p.us);
  }
  assert.equal(seen, [4, 8, 16, 32, 50]);
  p.idleEnded(50);
  assert.is(p.us, 50, 'at the maximum it stays');
});

test('an event within the bound changes nothing; one after the maximum drops it to 0 (QEMU\'s default shrink)', () => {
  const p = new AdaptivePoll(50);
  for (let i = 0; i < 3; i++) p.idleEnded(p.us + 1);
  assert.is(p.us, 16);
  p.idleEnded(10);
  assert.is(p.us, 16, 'caught by polling: keep the bound');
  p.idleEnded(51);
  assert.is(p.us, 0, 'the poll was wasted: stop polling');
});

test('poll-grow and poll-shrink set the factor and the divisor', () => {
  const p = new AdaptivePoll(1000, 4, 2);
  for (let i = 0; i < 3; i++) p.idleEnded(p.us + 1);
  assert.is(p.us, 64, 'grow 4: 4, 16, 64');
  p.idleEnded(5000);
  assert.is(p.us, 32, 'shrink 2 halves it');
  p.idleEnded(5000);
  assert.is(p.us, 16);
});

test('a maximum of 0 never polls; negative bounds are refused', () => {
  const p = new AdaptivePoll(0);
  p.idleEnded(1);
  assert.is(p.us, 0);
  assert.throws(() => new AdaptivePoll(-1), /poll bounds must be >= 0/);
  assert.throws(() => new AdaptivePoll(10, -2), /poll bounds must be >= 0/);
  assert.throws(() => new AdaptivePoll(Number.NaN), /poll bounds must be >= 0/);
});

test.run();
