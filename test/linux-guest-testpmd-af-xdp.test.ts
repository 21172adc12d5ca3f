// dpdk-testpmd in the Linux guest (QEMU TCG, virtio PMD on uio_pci_generic)
// drives our vhost-user device on AF_XDP, through the `bench testpmd`
// module with one short run per mode: txonly frames reach the peer's XDP
// counter (the device takes every frame testpmd counts as sent, and the
// peer counts them), and rxonly receives what the peer's XSK generator sends.
// The same run's baseline (QEMU's tap backend) is exercised too. Rates are
// printed, never asserted.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { listNetns } from '../src/host/netns';
import { benchTestpmd, type TestpmdStats } from '../src/bench/linux-testpmd-bench';
import type { DeviceCounters } from '../src/bench/linux-guest-rig';

const IMAGE_DIR = process.env.XDPVM_IMAGE_TEST_DIR ?? '/var/tmp/xdpvm-guest-image-test';

interface Run {
  mpps: number;
  seconds: number;
  testpmd: TestpmdStats;
  peerCounted?: number;
  peerGenerated?: number;
  device?: DeviceCounters;
  baselineTestpmd?: TestpmdStats;
  baselinePeerPackets?: number;
}

async function once(mode: 'txonly' | 'rxonly'): Promise<Run> {
  const r = await benchTestpmd({ mode, seconds: 3, runs: 1, engine: 'qemu-tcg', compare: 'qemu-tap', imageDir: IMAGE_DIR, progress: (l) => console.log(`  ${l}`) });
  const run = r.runs[0] as unknown as Run;
  console.log(`  ${mode}: xdpvm ${r.mpps.median.toFixed(4)} Mpps, ${r.baseline.name} ${r.baseline.mpps.median.toFixed(4)} Mpps (TCG, no claim)`);
  assert.is(r.workload, mode);
  assert.ok(run.seconds > 2 && run.seconds < 10, `the window lasted about 3 s (${run.seconds})`);
  assert.ok(run.mpps > 0);
  return run;
}

test('txonly: the peer counts every frame testpmd sent', async () => {
  const t0 = Date.now();
  const run = await once('txonly');
  assert.ok(run.testpmd.txPackets > 0, 'testpmd sent frames');
  assert.ok(run.peerCounted !== undefined && run.peerCounted > 0, `the peer counted frames (${run.peerCounted})`);
  assert.is(run.device?.txFrames, run.testpmd.txPackets, 'the device took every frame testpmd sent');
  // Normally every one arrives; a veth peer whose NAPI falls behind (a loaded machine) may drop a few.
  const sent = run.testpmd.txPackets;
  console.log(`  testpmd sent ${sent}, the device sent ${run.device?.txFrames}, the peer counted ${run.peerCounted}`);
  assert.ok(run.peerCounted! <= sent && run.peerCounted! >= sent * 0.95, `the peer counted (nearly) every frame: ${run.peerCounted} of ${sent}`);
  assert.is(run.testpmd.rxPackets, 0);
  assert.ok((run.baselineTestpmd?.txPackets ?? 0) > 0 && (run.baselinePeerPackets ?? 0) > 0, 'the baseline sent and the peer counted');
  console.log(`  wall time ${((Date.now() - t0) / 1000).toFixed(1)} s`);
});

test('rxonly: testpmd receives what the peer generates', async () => {
  const t0 = Date.now();
  const run = await once('rxonly');
  assert.ok(run.peerGenerated !== undefined && run.peerGenerated > 0, `the peer generated frames (${run.peerGenerated})`);
  assert.ok(run.testpmd.rxPackets > 0, 'testpmd received frames');
  assert.ok(run.testpmd.rxPackets <= run.peerGenerated!, 'no more than were sent');
  assert.ok((run.device?.rxFrames ?? 0) >= run.testpmd.rxPackets, `the device delivered them (${run.device?.rxFrames})`);
  assert.is(run.testpmd.txPackets, 0);
  assert.ok((run.baselineTestpmd?.rxPackets ?? 0) > 0, 'the baseline received too');
  assert.is(listNetns().filter((n) => n.startsWith('xdpvm-pmd-')).length, 0, 'namespaces removed');
  console.log(`  wall time ${((Date.now() - t0) / 1000).toFixed(1)} s`);
});

test.run();
