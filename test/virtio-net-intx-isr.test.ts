// With MSI-X disabled (§4.1.5.3, §4.1.4.5): used-buffer notifications set
// ISR bit 0 and assert INTx; the driver's ISR read returns the bits and
// clears them, deasserting INTx; config changes set bit 1.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VirtioFeature as V, VirtioPciIsr, featureMask } from 'virtio-spec-types';
import { PciCommand, PciHeader, PciStatus } from '../src/pci/config-header';
import { createNetRig } from '../src/test-driver';
import { makeFrame } from './support/frames';

for (const packed of [false, true]) {
  test(`${packed ? 'packed' : 'split'}: traffic asserts INTx through ISR bit 0; the read clears it`, () => {
    const rig = createNetRig();
    const { driver, irq } = rig;
    assert.ok(driver.bringUp({ features: packed ? featureMask(V.RING_PACKED, V.EVENT_IDX) : featureMask(V.EVENT_IDX), msix: false }).ok);
    assert.not.ok(driver.requireMsix().enabled);
    assert.is(irq.intxLevel, false);
    driver.send(makeFrame(1, 200));
    assert.is(irq.intxLevel, true);
    assert.ok(driver.port.configRead(driver.pci, PciHeader.STATUS, 2) & PciStatus.INTERRUPT);
    assert.is(irq.totalMsi, 0);
    assert.is(driver.readIsr(), VirtioPciIsr.QUEUE);
    assert.is(irq.intxLevel, false);
    assert.is(driver.readIsr(), 0, 'read-to-clear');
    assert.is(driver.receive().length, 1);
    // Both bits accumulate until read.
    driver.send(makeFrame(2, 200));
    rig.device.setLinkUp(false);
    assert.is(driver.readIsr(), VirtioPciIsr.QUEUE | VirtioPciIsr.CONFIG);
    assert.is(irq.intxLevel, false);
    assert.is(irq.intxAsserts, 2);
  });
}

test('Interrupt Disable in the command register keeps the pin low, the ISR still records', () => {
  const rig = createNetRig();
  const { driver, irq } = rig;
  driver.bringUp({ features: 0n, msix: false });
  const cmd = driver.port.configRead(driver.pci, PciHeader.COMMAND, 2);
  driver.port.configWrite(driver.pci, PciHeader.COMMAND, 2, cmd | PciCommand.INTERRUPT_DISABLE);
  driver.send(makeFrame(1, 64));
  assert.is(irq.intxLevel, false);
  assert.ok(driver.port.configRead(driver.pci, PciHeader.STATUS, 2) & PciStatus.INTERRUPT, 'status shows the condition');
  driver.port.configWrite(driver.pci, PciHeader.COMMAND, 2, cmd);
  assert.is(irq.intxLevel, true);
  assert.is(driver.readIsr(), VirtioPciIsr.QUEUE);
  assert.is(irq.intxLevel, false);
});

test('turning MSI-X on stops INTx; off again and INTx is back', () => {
  const rig = createNetRig();
  const { driver, irq } = rig;
  driver.bringUp({ features: 0n, msix: true });
  driver.send(makeFrame(1, 64));
  assert.is(irq.intxAsserts, 0);
  assert.ok(irq.totalMsi >= 2);
  driver.readIsr();
  driver.receive();
  driver.requireMsix().enable(false);
  irq.clear();
  driver.send(makeFrame(2, 64));
  assert.is(irq.totalMsi, 0);
  assert.is(irq.intxLevel, true);
  assert.is(driver.readIsr(), VirtioPciIsr.QUEUE);
});

test.run();
