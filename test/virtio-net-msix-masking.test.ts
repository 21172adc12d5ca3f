// MSI-X with real device interrupts (PCI 3.0 §6.8.2, virtio 1.2 §4.1.5.1.2):
// each queue's used-buffer notification on its own vector; a masked vector
// (per-vector mask or Function Mask) sets its Pending Bit instead of
// sending, and unmasking sends it once; NO_VECTOR sends nothing.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VIRTIO_MSI_NO_VECTOR, VirtioFeature as V, featureMask } from 'virtio-spec-types';
import { createNetRig, type NetRig } from '../src/test-driver';
import { makeFrame } from './support/frames';

// Queue 0 (rx) uses vector 1, queue 1 (tx) vector 2, configuration vector 0.
const RX_VECTOR = 1;
const TX_VECTOR = 2;

function running(packed = false): NetRig {
  const rig = createNetRig();
  assert.ok(rig.driver.bringUp({ features: packed ? featureMask(V.RING_PACKED) : 0n }).ok);
  rig.irq.clear();
  return rig;
}

for (const packed of [false, true]) {
  const ring = packed ? 'packed' : 'split';
  test(`${ring}: one frame round trip interrupts on the tx and rx vectors, nothing else`, () => {
    const rig = running(packed);
    rig.driver.send(makeFrame(1, 100));
    assert.is(rig.irq.count(TX_VECTOR), 1);
    assert.is(rig.irq.count(RX_VECTOR), 1);
    assert.is(rig.irq.totalMsi, 2);
    assert.is(rig.irq.unknownMsi, 0);
    assert.is(rig.driver.receive().length, 1);
  });

  test(`${ring}: a masked rx vector sets its pending bit; unmasking delivers it exactly once`, () => {
    const rig = running(packed);
    const m = rig.driver.requireMsix();
    m.mask(RX_VECTOR, true);
    rig.driver.send(makeFrame(1, 100));
    assert.is(rig.irq.count(RX_VECTOR), 0);
    assert.is(rig.irq.count(TX_VECTOR), 1, 'the tx vector is not masked');
    assert.ok(m.pending(RX_VECTOR));
    assert.not.ok(m.pending(TX_VECTOR));
    rig.driver.send(makeFrame(2, 100)); // a second notification while masked: still one pending bit
    m.mask(RX_VECTOR, false);
    assert.is(rig.irq.count(RX_VECTOR), 1);
    assert.not.ok(m.pending(RX_VECTOR));
    assert.is(rig.driver.receive().length, 2);
  });
}

test('the Function Mask holds every vector pending; clearing it delivers each once', () => {
  const rig = running();
  const m = rig.driver.requireMsix();
  m.functionMask(true);
  rig.driver.send(makeFrame(1, 64));
  rig.device.setLinkUp(false);
  assert.is(rig.irq.totalMsi, 0);
  assert.ok(m.pending(RX_VECTOR) && m.pending(TX_VECTOR) && m.pending(0));
  m.functionMask(false);
  assert.equal(rig.irq.vectors().sort(), [0, RX_VECTOR, TX_VECTOR]);
  assert.not.ok(m.pending(RX_VECTOR) || m.pending(TX_VECTOR) || m.pending(0));
});

test('a queue mapped to NO_VECTOR never interrupts; another vector for it works', () => {
  const rig = createNetRig();
  const d = rig.driver;
  d.negotiate(featureMask(V.VERSION_1), true);
  d.enableMsix();
  d.setupQueue(0, { vector: VIRTIO_MSI_NO_VECTOR });
  d.setupQueue(1, { vector: 3 });
  d.driverOk();
  rig.irq.clear();
  const rxq = d.queues[0]!;
  const buf = rig.ram.alloc(2048);
  rxq.add([{ addr: buf, len: 2048, write: true }]);
  rxq.kick();
  const txBuf = rig.ram.alloc(256);
  rig.ram.write(txBuf + 12, makeFrame(0, 100));
  d.queues[1]!.add([{ addr: txBuf, len: 112, write: false }]);
  d.queues[1]!.kick();
  assert.is(rxq.pollUsed().length, 1, 'the frame arrived');
  assert.equal(rig.irq.vectors(), [3]);
  assert.is(d.queueVector(0), VIRTIO_MSI_NO_VECTOR);
  assert.is(rig.irq.intxAsserts, 0, 'no INTx while MSI-X is enabled');
});

test('vectors beyond the table read back NO_VECTOR (§4.1.5.1.2)', () => {
  const rig = createNetRig();
  rig.driver.negotiate(featureMask(V.VERSION_1), true);
  rig.driver.enableMsix();
  assert.not.ok(rig.driver.setConfigVector(rig.driver.requireMsix().vectors));
  assert.is(rig.driver.configVector, VIRTIO_MSI_NO_VECTOR);
});

test.run();
