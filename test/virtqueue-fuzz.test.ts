import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { GenericDeviceTarget } from '../src/fuzz/generic-device-target';
import type { FuzzTarget } from '../src/fuzz/fuzz-target';
import { runVirtqueueFuzz } from '../src/fuzz/virtqueue-fuzz';
import type { GuestMemory } from '../src/memory/guest-memory';
import type { Virtqueue } from '../src/virtio/queue/virtqueue';

test('20,000 hostile cases: nothing escapes, canaries intact, every chain handed out is sound', () => {
  const target = new GenericDeviceTarget();
  const r = runVirtqueueFuzz({ cases: 20_000, seed: 0x5eed, target });
  assert.is(r.cases, 20_000);
  assert.is(r.escaped, 0, r.firstEscape ? `case ${r.firstEscape.case}: ${r.firstEscape.message}` : '');
  assert.is(r.canaryDamaged, 0);
  assert.is(r.badChains, 0);
  assert.is(r.harnessErrors, 0);
  assert.is(r.reasons.DeviceMisuse, undefined, 'the generic device uses the queue correctly');
  // The run really exercised both sides: queues that worked and queues that stopped, for many reasons.
  assert.ok(target.buffers > 50_000, `buffers popped: ${target.buffers}`);
  assert.ok(r.broken > 1000 && r.broken < 19_000, `broken: ${r.broken}`);
  assert.ok(r.outOfRange > 0);
  assert.ok(Object.keys(r.reasons).length >= 15, `reasons seen: ${Object.keys(r.reasons).join(', ')}`);
});

test('deterministic: the same seed gives the same result', () => {
  const a = runVirtqueueFuzz({ cases: 500, seed: 42 });
  const b = runVirtqueueFuzz({ cases: 500, seed: 42 });
  const c = runVirtqueueFuzz({ cases: 500, seed: 43 });
  assert.equal(a, b);
  assert.not.equal(a, c);
});

/** A device that throws on its first step: must be counted as escaped, not crash the run. */
class ThrowingTarget implements FuzzTarget {
  readonly name = 'throwing';
  readonly badChains = 0;
  attach(): void {}
  step(): void {
    throw new Error('boom');
  }
}

/** A device that writes one byte just past its region: the canary guard must notice. */
class OverrunTarget implements FuzzTarget {
  readonly name = 'overrun';
  readonly badChains = 0;
  private memory: GuestMemory | null = null;
  attach(_queue: Virtqueue, memory: GuestMemory): void {
    this.memory = memory;
  }
  step(): void {
    const bytes = this.memory?.regionBytes(0);
    if (bytes) new Uint8Array(bytes.buffer)[bytes.byteOffset + bytes.byteLength] ^= 1;
  }
}

test('the harness counts exceptions from the device side', () => {
  const r = runVirtqueueFuzz({ cases: 20, seed: 1, target: new ThrowingTarget() });
  assert.ok(r.escaped >= 20);
  assert.is(r.firstEscape?.message, 'Error: boom');
});

test('the canary guard notices a write outside guest memory', () => {
  const r = runVirtqueueFuzz({ cases: 20, seed: 1, target: new OverrunTarget() });
  assert.ok(r.canaryDamaged > 0);
});

test.run();
