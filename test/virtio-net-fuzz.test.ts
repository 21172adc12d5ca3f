// The virtio-net data path under the virtqueue fuzz engine: hostile rings,
// headers and lengths never throw out of the device, never touch memory
// outside the guest's, and never lose a backend frame.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VirtioNetTarget } from '../src/fuzz/virtio-net-target';
import { GuestUmemNetTarget } from '../src/fuzz/guest-umem-target';
import { runVirtqueueFuzz } from '../src/fuzz/virtqueue-fuzz';

test('20,000 fuzz cases against the virtio-net TX/RX paths: nothing escapes, nothing out of range', () => {
  const target = new VirtioNetTarget();
  const r = runVirtqueueFuzz({ cases: 20_000, seed: 424242, target });
  assert.is(r.cases, 20_000);
  assert.is(r.escaped, 0, JSON.stringify(r.firstEscape));
  assert.is(r.canaryDamaged, 0);
  assert.is(r.harnessErrors, 0);
  const c = target.counters;
  // The cases must really reach the device: frames both ways and drops of each kind.
  assert.ok(c.txFrames > 500, `tx ${c.txFrames}`);
  assert.ok(c.rxFrames > 500, `rx ${c.rxFrames}`);
  assert.ok(c.txDropRunt > 0 && c.txDropOversize > 0, JSON.stringify(c));
  assert.ok(r.broken > 0, 'hostile rings stop queues');
});

test('20,000 fuzz cases against the guest-umem path and a hostile simulated kernel: nothing escapes, every address the kernel got was the guest\'s', () => {
  const target = new GuestUmemNetTarget();
  const r = runVirtqueueFuzz({ cases: 20_000, seed: 777, target });
  assert.is(r.escaped, 0, JSON.stringify(r.firstEscape));
  assert.is(target.kernelViolations, 0);
  assert.is(r.canaryDamaged, 0);
  assert.is(r.harnessErrors, 0);
  const c = target.counters;
  assert.ok(c.txFrames > 500, `tx ${c.txFrames}`);
  assert.ok(c.rxFrames > 100, `rx ${c.rxFrames}`);
  const d = target.direct!;
  // The lies were seen and ignored, and both paths ran.
  assert.ok(d.unknownCompletions > 0 && d.unknownRx > 0, JSON.stringify(d));
  assert.ok(d.txDirect > 0 && d.txBounced > 0 && d.rxDirect + d.rxBounced > 0, JSON.stringify(d));
});

test.run();
