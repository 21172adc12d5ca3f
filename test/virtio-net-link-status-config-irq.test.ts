// Link state (§5.1.4 status, VIRTIO_NET_F_STATUS): the host taking the link
// down or up changes the status field and config_generation and sends a
// configuration change notification (§4.1.5.3 / §4.1.4.5), on the config
// vector with MSI-X or as ISR bit 1 and INTx without.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { NetFeature as N, NetStatus, VirtioPciIsr, featureMask } from 'virtio-spec-types';
import { CONFIG_VECTOR, createNetRig } from '../src/test-driver';

test('link down/up: status bit, generation, one config MSI per change and none for a non-change', () => {
  const rig = createNetRig();
  const { driver, device, irq } = rig;
  assert.ok(driver.bringUp({ features: featureMask(N.STATUS) }).ok);
  assert.is(driver.netStatus & NetStatus.LINK_UP, NetStatus.LINK_UP);
  irq.clear();
  const gen = driver.configGeneration;
  device.setLinkUp(false);
  assert.is(driver.netStatus & NetStatus.LINK_UP, 0);
  assert.is.not(driver.configGeneration, gen);
  assert.equal(irq.vectors(), [CONFIG_VECTOR]);
  device.setLinkUp(false);
  assert.is(irq.totalMsi, 1, 'no change, no interrupt');
  device.setLinkUp(true);
  assert.is(driver.netStatus & NetStatus.LINK_UP, NetStatus.LINK_UP);
  assert.equal(irq.vectors(), [CONFIG_VECTOR, CONFIG_VECTOR]);
  assert.is(irq.unknownMsi, 0);
  // §4.1.4.5.1: the ISR config bit is set with MSI-X too.
  assert.is(driver.readIsr() & VirtioPciIsr.CONFIG, VirtioPciIsr.CONFIG);
});

test('with the config vector unmapped (NO_VECTOR) the change is visible in the status field only', () => {
  const rig = createNetRig();
  const { driver, device, irq } = rig;
  driver.bringUp({ features: featureMask(N.STATUS) });
  assert.ok(driver.setConfigVector(0xffff));
  irq.clear();
  device.setLinkUp(false);
  assert.is(irq.totalMsi, 0);
  assert.is(driver.netStatus & NetStatus.LINK_UP, 0);
});

test('without MSI-X a link change raises ISR bit 1 and INTx; reading the ISR clears both', () => {
  const rig = createNetRig();
  const { driver, device, irq } = rig;
  assert.ok(driver.bringUp({ features: featureMask(N.STATUS), msix: false }).ok);
  assert.is(irq.intxLevel, false);
  device.setLinkUp(false);
  assert.is(irq.intxLevel, true);
  assert.is(irq.totalMsi, 0);
  assert.is(driver.readIsr(), VirtioPciIsr.CONFIG);
  assert.is(irq.intxLevel, false);
  assert.is(driver.readIsr(), 0);
});

test('a link change before DRIVER_OK interrupts nobody but is seen in the field', () => {
  const rig = createNetRig();
  rig.driver.negotiate(featureMask(32, N.STATUS), true);
  rig.device.setLinkUp(false);
  assert.is(rig.irq.totalMsi + rig.irq.intxAsserts, 0);
  assert.is(rig.driver.netStatus & NetStatus.LINK_UP, 0);
});

test.run();
