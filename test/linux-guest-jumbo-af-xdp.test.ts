// MTU 9000 with a Linux guest (QEMU TCG, our vhost-user device on the A end
// of a veth pair whose both ends have MTU 9000), in one boot: QEMU offers
// host_mtu=9000 (VIRTIO_NET_F_MTU, passed to us by NET_SET_MTU), the guest's
// eth0 comes up at 9000, the guest pings the peer with 8972-byte payloads
// (9000-byte IP packets) and the peer pings it back, both with `-M do`
// (fragmenting forbidden: iputils' ping, in the image for this), a 9001-byte
// packet is refused by the guest's own stack, and iperf3 TCP runs both ways.
// Every jumbo frame crosses the AF_XDP socket as a multi-buffer chain: the
// backend counts them.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { listNetns } from '../src/host/netns';
import {
  bootGuest,
  ChildRun,
  DRAIN_CONSOLE,
  ensureHostTools,
  guestImage,
  guestResult,
  NetRig,
  runLimited,
  VhostUserDevice,
  WAIT_LINK_UP,
  waitEchosAnswered,
} from '../src/bench/linux-guest-rig';
import { parseIperfSection } from '../src/bench/linux-tcp-bench';

const IMAGE_DIR = process.env.XDPVM_IMAGE_TEST_DIR ?? '/var/tmp/xdpvm-guest-image-test';
const log = (l: string): void => console.log(`  ${l}`);
const MTU = 9000;
/** 9000 - 20 (IPv4) - 8 (ICMP). */
const PING_PAYLOAD = MTU - 28;
const PORT = 5201;
const SECONDS = 3;

const GUEST_CMD = [
  WAIT_LINK_UP,
  'echo "XDPVM-MTU $(cat /sys/class/net/eth0/mtu)"',
  `/usr/bin/ping -c 3 -W 5 -M do -s ${PING_PAYLOAD} ${NetRig.PEER_IP} && echo XDPVM-PINGED-PEER`,
  // One byte more than the MTU with fragmenting forbidden: the guest's stack must refuse it (EMSGSIZE).
  `/usr/bin/ping -c 1 -W 2 -M do -s ${PING_PAYLOAD + 1} ${NetRig.PEER_IP} 2>&1; echo "XDPVM-OVERSIZE rc=$?"`,
  waitEchosAnswered(3),
  `for d in fwd rev;do r=;[ $d = rev ]&&r=-R;echo "XDPVM-IPERF $d begin";iperf3 -c ${NetRig.PEER_IP} -p ${PORT} -J -i 0 -t ${SECONDS} --connect-timeout 10000 $r;echo "XDPVM-IPERF $d end rc=$?";done`,
  DRAIN_CONSOLE,
].join('\n');

test(`guest at MTU ${MTU}: 9000-byte -M do pings both ways, 9001 refused, and iperf3 both ways, through AF_XDP multi-buffer`, async () => {
  const t0 = Date.now();
  await ensureHostTools(['ethtool', 'ping', 'iperf3'], log);
  const image = await guestImage(IMAGE_DIR, log);
  const rig = new NetRig('jumbo', { mtu: MTU });
  let device: VhostUserDevice | undefined;
  let server: ChildRun | undefined;
  let vm: ChildRun | undefined;
  try {
    device = VhostUserDevice.open(rig, 'jumbo');
    assert.ok(device.backend.multiBuffer, 'the backend bound with XDP_USE_SG');
    server = ChildRun.spawn('ip', ['netns', 'exec', rig.b.netns, 'iperf3', '-s', '--forceflush', '-B', NetRig.PEER_IP, '-p', String(PORT)], {
      label: 'iperf3 server',
      timeoutMs: 400_000,
    });
    await server.waitFor(/Server listening/, 10_000);
    let peerPing: Promise<string> | undefined;
    vm = bootGuest({
      engine: 'qemu-tcg',
      nic: 'xdpvm',
      image,
      rig,
      device,
      hostMtu: MTU,
      params: { cmd: GUEST_CMD, ip: `${NetRig.GUEST_IP}/${NetRig.PREFIX}` },
      timeoutMs: 360_000,
      label: 'guest',
      onLine: (line) => {
        if (!line.startsWith('XDPVM-PINGED-PEER') || peerPing) return;
        peerPing = runLimited(
          'ip',
          ['netns', 'exec', rig.b.netns, 'ping', '-c', '3', '-W', '5', '-M', 'do', '-s', String(PING_PAYLOAD), NetRig.GUEST_IP],
          60_000,
        ).catch((e: Error) => e.message);
      },
    });
    const r = await guestResult(vm);
    const peerOut = (await peerPing) ?? '(the peer never pinged: the guest did not get that far)';
    const detail = `\n--- guest ---\n${vm.tail(60)}\n--- server ---\n${device.log.join('\n')}`;
    log(`boot to power-off ${r.exit.seconds.toFixed(1)} s; guest said: ${r.output.split('\n').filter((l) => /^(XDPVM-(MTU|PINGED|ECHOS|OVERSIZE)|\d+ packets)|message too long/.test(l)).join(' | ')}`);
    log(`peer's ping: ${peerOut.trim().split('\n').slice(-2).join(' | ')}`);
    assert.not.ok(r.exit.timedOut, `the guest powered off by itself${detail}`);
    assert.is(r.rc, 0, `guest command rc${detail}`);
    assert.match(r.output, new RegExp(`^XDPVM-MTU ${MTU}$`, 'm'), `eth0 took the device's MTU (VIRTIO_NET_F_MTU)${detail}`);
    assert.match(r.output, /XDPVM-PINGED-PEER/, `the guest's 9000-byte -M do pings were answered${detail}`);
    assert.match(r.output, /message too long/, `a 9001-byte -M do ping is refused in the guest${detail}`);
    assert.match(r.output, /XDPVM-OVERSIZE rc=[1-9]/, `...and ping says so in its exit status${detail}`);
    assert.match(peerOut, /3 packets transmitted, 3 received/, `the peer's 9000-byte -M do pings were answered: ${peerOut}`);
    for (const d of ['fwd', 'rev'] as const) {
      const { json, rc } = parseIperfSection(r.console, d);
      const sent = json.end?.sum_sent?.bytes ?? 0;
      const got = json.end?.sum_received?.bytes ?? 0;
      log(`iperf3 ${d === 'fwd' ? 'guest -> peer' : 'peer -> guest'}: rc ${rc}, sent ${sent} B, received ${got} B (${((json.end?.sum_received?.bits_per_second ?? 0) / 1e6).toFixed(1)} Mbit/s, TCG: no claim)`);
      assert.is(rc, 0, `iperf3 ${d}: rc${detail}`);
      assert.ok(got > 0 && got <= sent, `iperf3 ${d}: data moved (${got} of ${sent} B)`);
    }
    const s = device.server.runner.stats(0);
    assert.ok(s, 'the pair ran');
    log(`device: ${JSON.stringify(s!.device)}; backend multi-buffer: tx ${s!.backend.txMultiBuffer}, rx ${s!.backend.rxMultiBuffer}`);
    assert.is(s!.device.txDropOverMtu, 0, 'the guest sent nothing over its MTU');
    assert.is(s!.device.rxDropOverMtu, 0, 'nothing over the MTU came from the wire');
    assert.is(s!.device.txDropOversize, 0);
    // 3 echo requests and 3 replies each way at least, plus iperf3's full-size segments.
    assert.ok(s!.backend.txMultiBuffer >= 6, `frames over one UMEM frame sent whole: ${s!.backend.txMultiBuffer}`);
    assert.ok(s!.backend.rxMultiBuffer >= 6, `frames over one UMEM frame received whole: ${s!.backend.rxMultiBuffer}`);
  } finally {
    await vm?.stop();
    await server?.stop();
    await device?.close();
    rig.remove();
  }
  assert.not.ok(listNetns().some((n) => n === rig.a.netns || n === rig.b.netns), 'namespaces removed');
  log(`test wall time ${((Date.now() - t0) / 1000).toFixed(1)} s`);
});

test.run();
