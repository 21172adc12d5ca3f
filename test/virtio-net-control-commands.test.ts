// The control queue (§5.1.6.5): RX mode (§5.1.6.5.1), MAC address and
// filter tables (§5.1.6.5.2), announcements (§5.1.6.5.4), and ERR for
// classes and commands the negotiated features do not cover.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { NetCtrlAck as Ack, NetCtrlClass, NetCtrlMac, NetCtrlRx, NetFeature as N, NetStatus, featureMask } from 'virtio-spec-types';
import { CTRL_NO_ANSWER, TEST_MAC, createNetRig, type NetRig } from '../src/test-driver';

function rig(features: number[], packed = false): NetRig {
  const r = createNetRig();
  assert.ok(r.driver.bringUp({ features: featureMask(N.CTRL_VQ, N.MAC, N.STATUS, ...features, ...(packed ? [34] : [])) }).ok);
  return r;
}

for (const packed of [false, true]) {
  const ring = packed ? 'packed' : 'split';
  test(`${ring}: RX mode commands are OK with CTRL_RX; extra modes beyond NOBCAST are ERR`, () => {
    const r = rig([N.CTRL_RX], packed);
    assert.is(r.driver.setRxMode(NetCtrlRx.PROMISC, true), Ack.OK);
    assert.is(r.driver.setRxMode(NetCtrlRx.PROMISC, false), Ack.OK);
    assert.is(r.driver.setRxMode(NetCtrlRx.ALLMULTI, true), Ack.OK);
    assert.is(r.driver.ctrlCommand(NetCtrlClass.RX, 6, Uint8Array.of(1)), Ack.ERR);
    assert.is(r.driver.ctrlCommand(NetCtrlClass.RX, NetCtrlRx.PROMISC), Ack.ERR, 'no data byte');
    assert.ok(r.driver.queueInterrupts(r.driver.ctrlQueueIndex) > 0, 'control queue used-buffer interrupts');
  });

  test(`${ring}: MAC ADDR_SET changes the configuration mac and config_generation`, () => {
    const r = rig([N.CTRL_MAC_ADDR, N.CTRL_RX], packed);
    const gen = r.driver.configGeneration;
    const mac = Uint8Array.of(0x02, 1, 2, 3, 4, 5);
    assert.is(r.driver.setMac(mac), Ack.OK);
    assert.equal(r.driver.mac, mac);
    assert.is.not(r.driver.configGeneration, gen);
    assert.is(r.driver.ctrlCommand(NetCtrlClass.MAC, NetCtrlMac.ADDR_SET, Uint8Array.of(1, 2, 3)), Ack.ERR, 'short address');
    assert.is(r.driver.setMacTable([mac], [Uint8Array.of(0x01, 0, 0x5e, 0, 0, 1)]), Ack.OK);
  });
}

test('MAC ADDR_SET without CTRL_MAC_ADDR, and RX mode without CTRL_RX, are ERR; the MAC stays', () => {
  const r = rig([]);
  assert.is(r.driver.setMac(Uint8Array.of(2, 2, 2, 2, 2, 2)), Ack.ERR);
  assert.equal(r.driver.mac, TEST_MAC);
  assert.is(r.driver.setRxMode(NetCtrlRx.PROMISC, true), Ack.ERR);
  assert.is(r.driver.setMacTable([], []), Ack.ERR);
});

test('unknown classes and VLAN (not offered) are ERR; a command through an indirect table works', () => {
  const r = createNetRig();
  assert.ok(r.driver.bringUp({ features: featureMask(N.CTRL_VQ, N.CTRL_RX, 28) }).ok);
  assert.is(r.driver.ctrlCommand(NetCtrlClass.VLAN, 0, Uint8Array.of(1, 0)), Ack.ERR);
  assert.is(r.driver.ctrlCommand(0x7f, 0), Ack.ERR);
  assert.is(r.driver.ctrl!.command(NetCtrlClass.RX, NetCtrlRx.ALLMULTI, Uint8Array.of(1), { indirect: true }), Ack.OK);
  assert.is(r.device.queuePairs()[0]!.broken, false);
  assert.not.ok(r.driver.needsReset);
});

test('ANNOUNCE: the device sets the status bit with a config interrupt; ANNOUNCE_ACK clears it', () => {
  const r = rig([N.GUEST_ANNOUNCE]);
  const before = r.driver.configInterrupts();
  r.device.announce();
  assert.is(r.driver.netStatus, NetStatus.LINK_UP | NetStatus.ANNOUNCE);
  assert.is(r.driver.configInterrupts(), before + 1);
  assert.is(r.driver.announceAck(), Ack.OK);
  assert.is(r.driver.netStatus, NetStatus.LINK_UP);
});

test('announce() is a no-op when GUEST_ANNOUNCE was not negotiated', () => {
  const r = rig([]);
  r.device.announce();
  assert.is(r.driver.netStatus, NetStatus.LINK_UP);
  assert.is(r.driver.configInterrupts(), 0);
});

test('a control chain with no writable ack byte is answered with nothing usable, but returned', () => {
  const r = rig([N.CTRL_RX]);
  const q = r.driver.ctrl!.queue;
  const at = r.ram.alloc(16);
  r.ram.write(at, Uint8Array.of(NetCtrlClass.RX, NetCtrlRx.PROMISC, 1));
  q.add([{ addr: at, len: 3, write: false }]);
  q.kick();
  const used = q.pollUsed();
  assert.is(used.length, 1);
  assert.is(used[0]!.len, 0);
  assert.is(r.driver.setRxMode(NetCtrlRx.PROMISC, true), Ack.OK, 'the queue still works');
  assert.is.not(r.driver.setRxMode(NetCtrlRx.PROMISC, true), CTRL_NO_ANSWER);
});

test.run();
