// A real front end failing mid-traffic (test/vhost-user-reconnect.test.ts
// covers a scripted front end that just closes its socket): after a clean
// first session, QEMU runs the Linux guest with iperf3 --bidir through our
// vhost-user server on AF_XDP, is stopped (SIGSTOP) for a while and
// continued, then killed (SIGKILL) while frames flow both ways. The server
// stays up, drops the connection, unmaps the guest's memory and holds no
// more fds than after the clean session; the next QEMU connects to the same
// server and backend and TCP works both ways again. At the end every UMEM
// frame is accounted for, the fd count is back where it was before the
// server and no XDP program is left on the interface.
import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { listNetns, xdpState } from '../src/host/netns';
import {
  bootGuest,
  ChildRun,
  ensureHostTools,
  guestImage,
  guestResult,
  NetRig,
  runLimited,
  sleep,
  VhostUserDevice,
  WAIT_LINK_UP,
  type DeviceCounters,
  type GuestImage,
} from '../src/bench/linux-guest-rig';
import { parseIperfSection, tcpGuestScript } from '../src/bench/linux-tcp-bench';
import { openFds } from './support/fd-count';

const IMAGE_DIR = process.env.XDPVM_IMAGE_TEST_DIR ?? '/var/tmp/xdpvm-guest-image-test';
const log = (l: string): void => console.log(`  ${l}`);

/** Mappings of this process backed by QEMU's guest RAM (memory-backend-memfd). */
function guestRamMappings(): number {
  return readFileSync('/proc/self/maps', 'utf8')
    .split('\n')
    .filter((l) => l.includes('/memfd:memory-backend-memfd')).length;
}

async function until(what: string, cond: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(100);
  }
}

function iperfServer(rig: NetRig): ChildRun {
  return ChildRun.spawn('ip', ['netns', 'exec', rig.b.netns, 'iperf3', '-s', '--forceflush', '-B', NetRig.PEER_IP], {
    label: 'iperf3 server',
    timeoutMs: 240_000,
  });
}

function boot(image: GuestImage, rig: NetRig, device: VhostUserDevice, cmd: string, label: string): ChildRun {
  return bootGuest({
    engine: 'qemu-tcg',
    nic: 'xdpvm',
    image,
    rig,
    device,
    params: { cmd, ip: `${NetRig.GUEST_IP}/${NetRig.PREFIX}` },
    timeoutMs: 240_000,
    label,
  });
}

test('QEMU stopped, then killed mid-iperf3: the server survives, the next QEMU gets traffic, nothing leaks', async () => {
  const t0 = Date.now();
  await ensureHostTools(['iperf3', 'ethtool'], log);
  const image = await guestImage(IMAGE_DIR, log);
  await runLimited('true', [], 5_000); // node's child-process machinery (its signal pipe) exists from here on
  const rig = new NetRig('kill');
  const children: ChildRun[] = [];
  let device: VhostUserDevice | undefined;
  try {
    const fdsBeforeServer = openFds();
    device = VhostUserDevice.open(rig, 'kill');
    const dev = device;
    const server = dev.server;
    const counters = (): DeviceCounters => dev.counters() ?? { txFrames: 0, txBytes: 0, rxFrames: 0, rxBytes: 0, rxNoBuffers: 0, rxDiscarded: 0 };

    // ---- a clean first session: the server's persistent I/O worker (its own event loop's fds) exists from here on.
    const vm0 = boot(image, rig, dev, [WAIT_LINK_UP, `ping -c 2 -W 5 ${NetRig.PEER_IP}`].join('\n'), 'guest 0');
    children.push(vm0);
    const r0 = await guestResult(vm0);
    assert.is(r0.rc, 0, `the first guest pinged the peer:\n${vm0.tail(30)}`);
    await until('the first connection to close', () => server.connection === undefined, 10_000);
    const fdsIdle = openFds();

    // ---- next QEMU: a long bidirectional iperf3, stopped, continued, killed.
    const srv1 = iperfServer(rig);
    children.push(srv1);
    await srv1.waitFor(/Server listening/, 10_000);
    const cmd1 = [WAIT_LINK_UP, `ping -c1 -W5 ${NetRig.PEER_IP} >/dev/null`, 'echo XDPVM-TRAFFIC', `iperf3 -c ${NetRig.PEER_IP} -t 120 -i 0 --bidir --connect-timeout 10000`].join('\n');
    const vm1 = boot(image, rig, dev, cmd1, 'guest 1 (killed)');
    children.push(vm1);
    await vm1.waitFor(/^XDPVM-TRAFFIC$/m, 120_000);
    await until('frames both ways', () => counters().txFrames > 20_000 && counters().rxFrames > 20_000, 60_000);
    assert.ok(guestRamMappings() > 0, 'the server maps the guest RAM while QEMU is connected');
    let c = counters();
    log(`mid-traffic after ${((Date.now() - t0) / 1000).toFixed(1)} s: ${JSON.stringify(c)}`);

    vm1.signal('SIGSTOP');
    await sleep(1500);
    const frozen = counters();
    await sleep(1500);
    assert.ok(server.connection !== undefined, 'a stopped front end is still connected');
    assert.ok(server.runner.isRunning(0), 'the queue pair keeps running while QEMU is stopped');
    // A stopped guest neither posts nor reclaims buffers; a few in flight may still land.
    assert.ok(counters().txFrames - frozen.txFrames < 1000, `no guest TX while stopped: ${JSON.stringify(frozen)} -> ${JSON.stringify(counters())}`);
    vm1.signal('SIGCONT');
    c = counters();
    await until('traffic again after SIGCONT', () => counters().txFrames > c.txFrames + 5000 && counters().rxFrames > c.rxFrames + 5000, 60_000);
    log(`resumed after SIGCONT: ${JSON.stringify(counters())}`);

    vm1.signal('SIGKILL');
    const e1 = await vm1.exited;
    assert.is(e1.signal, 'SIGKILL');
    await until('the server to drop the connection', () => server.connection === undefined, 10_000);
    assert.not.ok(server.runner.isRunning(0), 'the pair stopped with its front end');
    assert.is(guestRamMappings(), 0, "the dead guest's memory is unmapped");
    await srv1.stop();
    assert.is(openFds(), fdsIdle, 'every fd of the killed connection is closed (as many as after a clean session)');
    await until('frames to settle back', () => {
      const a = server.frameAccounting(0);
      return a !== undefined && a.total === a.frameCount && a.tx === 0;
    }, 5_000);
    log(`after SIGKILL: ${JSON.stringify(server.history.at(-1))}; frames ${JSON.stringify(server.frameAccounting(0))}`);

    // ---- and the next QEMU, same server: TCP both ways works.
    const before = counters();
    const srv2 = iperfServer(rig);
    children.push(srv2);
    await srv2.waitFor(/Server listening/, 10_000);
    const vm2 = boot(image, rig, dev, tcpGuestScript(NetRig.PEER_IP, 2), 'guest 2 (after the kill)');
    children.push(vm2);
    const r2 = await guestResult(vm2);
    assert.ok(r2.began && r2.rc !== undefined, `the second guest finished its command:\n${vm2.tail(40)}`);
    for (const d of ['fwd', 'rev'] as const) {
      const { json } = parseIperfSection(r2.console, d);
      assert.not.ok(json.error, `iperf3 ${d} after the reconnect: ${json.error}`);
      const got = json.end?.sum_received?.bytes ?? 0;
      log(`after reconnect, ${d === 'fwd' ? 'guest -> peer' : 'peer -> guest'}: ${got} B, ${((json.end?.sum_received?.bits_per_second ?? 0) / 1e9).toFixed(3)} Gbit/s`);
      assert.ok(got > 0, `iperf3 ${d} moved data after the reconnect`);
    }
    const after = counters();
    assert.ok(after.txFrames > before.txFrames && after.rxFrames > before.rxFrames, 'the same device carried the second guest');
    await until('the second connection to close', () => server.connection === undefined, 10_000);
    await srv2.stop();
    assert.is(guestRamMappings(), 0);
    assert.is(openFds(), fdsIdle, 'no fd growth from one QEMU to the next');
    assert.is(server.history.length, 3, 'three connections served');

    // ---- closing: every frame accounted for, every fd closed, no program left.
    await dev.close();
    device = undefined;
    const a = server.frameAccounting(0);
    assert.ok(a && a.total === a.frameCount, `every UMEM frame accounted for after close: ${JSON.stringify(a)}`);
    assert.is(openFds(), fdsBeforeServer, 'the server and backend released every fd');
    assert.is(xdpState(rig.a.netns, rig.a.ifname).attached, 0, 'no XDP program left on the interface');
  } finally {
    for (const ch of children) await ch.stop();
    await device?.close();
    rig.remove();
  }
  assert.not.ok(listNetns().some((n) => n === rig.a.netns || n === rig.b.netns), 'namespaces removed');
  log(`test wall time ${((Date.now() - t0) / 1000).toFixed(1)} s`);
});

test.run();
