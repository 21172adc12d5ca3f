// iperf3 TCP between the Linux guest (QEMU TCG, our vhost-user device on
// AF_XDP) and the veth peer moves data both ways, through the `bench tcp`
// module with one short run. Bytes are counted at both ends: iperf3's sender
// and receiver, our device, and the peer's interface; the same run's
// baseline (QEMU's tap backend on the same veth) moves data too. The figures
// are printed, never asserted: TCG speeds are no performance claims.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { listNetns } from '../src/host/netns';
import { benchTcp, type TcpDirectionResult } from '../src/bench/linux-tcp-bench';

const IMAGE_DIR = process.env.XDPVM_IMAGE_TEST_DIR ?? '/var/tmp/xdpvm-guest-image-test';

function checkBothEnds(what: string, d: TcpDirectionResult | undefined, device: boolean): void {
  assert.ok(d, `${what}: measured`);
  assert.ok(d!.senderBytes > 0, `${what}: the iperf3 sender sent bytes`);
  assert.ok(d!.receiverBytes > 0, `${what}: the iperf3 receiver got bytes`);
  assert.ok(d!.receiverBytes <= d!.senderBytes, `${what}: received no more than sent`);
  assert.ok(d!.peerBytes >= d!.receiverBytes * 0.9, `${what}: the peer's link carried the stream (${d!.peerBytes} B for ${d!.receiverBytes} B of payload)`);
  assert.ok(d!.gbps > 0, `${what}: a rate`);
  if (device) {
    assert.ok((d!.deviceBytes ?? 0) >= d!.receiverBytes, `${what}: our device carried at least the payload (${d!.deviceBytes} B)`);
    assert.ok((d!.deviceFrames ?? 0) > 0, `${what}: device frames`);
  }
}

test('iperf3 TCP guest -> peer and peer -> guest both move data, counted at both ends', async () => {
  const t0 = Date.now();
  const r = await benchTcp({
    seconds: 3,
    runs: 1,
    engine: 'qemu-tcg',
    compare: 'qemu-tap',
    imageDir: IMAGE_DIR,
    progress: (l) => console.log(`  ${l}`),
  });
  const run = r.runs[0] as { fwd?: TcpDirectionResult; rev?: TcpDirectionResult; baselineFwd?: TcpDirectionResult; baselineRev?: TcpDirectionResult };
  console.log(
    `  xdpvm: ${r.gbps.median.toFixed(3)} Gbit/s guest -> peer, ${r.gbpsReverse.median.toFixed(3)} Gbit/s peer -> guest; ` +
      `${r.baseline.name}: ${r.baseline.gbps.median.toFixed(3)} / ${r.baseline.gbpsReverse.median.toFixed(3)}; ratio ${r.ratio.toFixed(3)} (TCG, no claim)`,
  );
  checkBothEnds('guest -> peer', run.fwd, true);
  checkBothEnds('peer -> guest', run.rev, true);
  checkBothEnds('baseline guest -> peer', run.baselineFwd, false);
  checkBothEnds('baseline peer -> guest', run.baselineRev, false);
  // The result is what report.ts saves and what the command prints as its JSON line.
  const json = JSON.parse(JSON.stringify(r)) as { gbps: { median: number; min: number; max: number }; workload: string; note: string };
  assert.is(json.workload, 'tcp');
  assert.ok(json.gbps.min <= json.gbps.median && json.gbps.median <= json.gbps.max);
  assert.match(json.note, /no performance claims/);
  assert.is(r.engine, 'qemu-tcg');
  assert.is(listNetns().filter((n) => n.startsWith('xdpvm-tcp-')).length, 0, 'namespaces removed');
  console.log(`  test wall time ${((Date.now() - t0) / 1000).toFixed(1)} s`);
});

test.run();
