// The Linux guest image under QEMU TCG with our vhost-user virtio-net device
// on the A end of a veth pair: the guest sees carrier, pings the peer on B,
// and then stays up answering until the peer has pinged it back three times.
// Every frame goes through the server's AF_XDP socket: A has no address and
// our XDP program takes everything it receives, the device counters see the
// frames, and the peer learns the guest's MAC from its ARP reply.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { listNetns, xdpState } from '../src/host/netns';
import {
  bootGuest,
  DRAIN_CONSOLE,
  ensureHostTools,
  guestImage,
  guestResult,
  NetRig,
  runLimited,
  VhostUserDevice,
  WAIT_LINK_UP,
  waitEchosAnswered,
  type ChildRun,
} from '../src/bench/linux-guest-rig';

const IMAGE_DIR = process.env.XDPVM_IMAGE_TEST_DIR ?? '/var/tmp/xdpvm-guest-image-test';
const log = (l: string): void => console.log(`  ${l}`);

const GUEST_CMD = [
  WAIT_LINK_UP,
  'echo "XDPVM-LINK $(cat /sys/class/net/eth0/operstate)"',
  `ping -c 3 -W 5 ${NetRig.PEER_IP} && echo XDPVM-PINGED-PEER`,
  // The echo requests the guest's stack has answered (InEchos).
  waitEchosAnswered(3),
  DRAIN_CONSOLE,
].join('\n');

test('guest: link up, pings the peer, the peer pings it back, all through AF_XDP', async () => {
  const t0 = Date.now();
  await ensureHostTools(['ethtool', 'ping'], log);
  const image = await guestImage(IMAGE_DIR, log);
  const rig = new NetRig('ping');
  let device: VhostUserDevice | undefined;
  let vm: ChildRun | undefined;
  try {
    device = VhostUserDevice.open(rig, 'ping');
    let peerPing: Promise<string> | undefined;
    let xdpDuringRun = -1;
    vm = bootGuest({
      engine: 'qemu-tcg',
      nic: 'xdpvm',
      image,
      rig,
      device,
      params: { cmd: GUEST_CMD, ip: `${NetRig.GUEST_IP}/${NetRig.PREFIX}` },
      timeoutMs: 180_000,
      label: 'guest',
      onLine: (line) => {
        if (!line.startsWith('XDPVM-PINGED-PEER') || peerPing) return;
        // The guest is alive and waiting: the peer pings it now.
        xdpDuringRun = xdpState(rig.a.netns, rig.a.ifname).attached;
        peerPing = runLimited('ip', ['netns', 'exec', rig.b.netns, 'ping', '-c', '3', '-W', '5', NetRig.GUEST_IP], 60_000).catch((e: Error) => e.message);
      },
    });
    const r = await guestResult(vm);
    const peerOut = (await peerPing) ?? '(the peer never pinged: the guest did not get that far)';
    log(`boot to power-off ${r.exit.seconds.toFixed(1)} s; guest said: ${r.output.split('\n').filter((l) => /^(XDPVM-|\d+ packets)/.test(l)).join(' | ')}`);
    log(`peer's ping: ${peerOut.trim().split('\n').slice(-2).join(' | ')}`);
    const detail = `\n--- guest ---\n${vm.tail(40)}\n--- server ---\n${device.log.join('\n')}`;
    assert.not.ok(r.exit.timedOut, `the guest powered off by itself${detail}`);
    assert.is(r.rc, 0, `guest command rc${detail}`);
    assert.match(r.output, /^XDPVM-LINK up$/m, `eth0 has carrier${detail}`);
    assert.match(r.output, /3 packets transmitted, 3 packets received/, `the guest's pings were answered${detail}`);
    assert.match(r.output, /^XDPVM-PINGED-PEER$/m);
    assert.match(peerOut, /3 packets transmitted, 3 received/, `the peer's pings were answered: ${peerOut}`);
    const answered = /^XDPVM-ECHOS-ANSWERED (\d+)$/m.exec(r.output);
    assert.ok(answered && Number(answered[1]) >= 3, `the guest's stack answered the peer's echo requests${detail}`);
    // Through AF_XDP: our program was on A while the guest ran, and the device moved the frames.
    assert.ok(xdpDuringRun > 0, `an XDP program on ${rig.a.ifname} during the run (state ${xdpDuringRun})`);
    const c = device.counters();
    log(`device counters: ${JSON.stringify(c)}`);
    assert.ok(c && c.txFrames >= 6 && c.rxFrames >= 6, `the device carried both pings (echo + reply each way): ${JSON.stringify(c)}`);
    const neigh = rig.peerExec(['ip', 'neigh', 'show', NetRig.GUEST_IP]);
    assert.match(neigh, new RegExp(`lladdr ${NetRig.GUEST_MAC}`), `the peer learnt the guest's MAC: ${neigh}`);
  } finally {
    await vm?.stop();
    await device?.close();
    rig.remove();
  }
  assert.ok(namespacesGone(rig), 'namespaces removed');
  log(`test wall time ${((Date.now() - t0) / 1000).toFixed(1)} s`);
});

function namespacesGone(rig: NetRig): boolean {
  return !listNetns().some((n) => n === rig.a.netns || n === rig.b.netns);
}

test.run();
