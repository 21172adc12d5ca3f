// `bench device --backend af-xdp --threads --mode txonly|rxonly|io-fwd`:
// the options it refuses, and on a short run of each mode that frames are
// counted at both ends (driver and peer / generator) for the device and for
// the raw C loop, with the per-million-frames counters filled in. No rate is
// asserted: benchmarks report figures, tests check behaviour.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { benchDeviceWorker, checkDeviceWorkerOptions, type DeviceWorkerMode } from '../src/bench/device-worker-bench';
import { parseVmmCounters, sumPairs } from '../src/bench/per-million';
import { DEFAULT_PMD_QUEUE_SIZE } from '../src/bench/pmd-bench';
import { UsageError } from '../src/cli/args';
import { benchCommand } from '../src/cli/bench-command';

async function usageError(argv: string[]): Promise<string> {
  try {
    await benchCommand(argv);
  } catch (e) {
    assert.instance(e, UsageError, `${argv.join(' ')}: ${(e as Error).message}`);
    return (e as Error).message;
  }
  assert.unreachable(`${argv.join(' ')} was accepted`);
  return '';
}

test('bench device refuses modes and bursts without --threads, unknown modes, bad bursts and --batch with --threads', async () => {
  assert.match(await usageError(['device', '--mode', 'rxonly']), /--threads/);
  assert.match(await usageError(['device', '--backend', 'af-xdp', '--burst', '8']), /--threads/);
  assert.match(await usageError(['device', '--threads', '--mode', 'rxonly']), /--backend af-xdp/);
  assert.match(await usageError(['device', '--backend', 'af-xdp', '--threads', '--mode', 'l2fwd']), /--mode must be one of txonly, rxonly, io-fwd/);
  assert.match(await usageError(['device', '--backend', 'af-xdp', '--threads', '--burst', '0']), /--burst must be at least 1/);
  assert.match(await usageError(['device', '--backend', 'af-xdp', '--threads', '--batch', '32']), /--burst/);
  assert.match(await usageError(['device', '--backend', 'af-xdp', '--threads', '--peer-napi', 'busy']), /--peer-napi must be one of softirq, threaded/);
  assert.match(await usageError(['device', '--backend', 'af-xdp', '--peer-napi', 'threaded']), /--threads/);
  assert.throws(() => checkDeviceWorkerOptions({ mode: 'io-fwd', queueSize: 256, burst: 300, seconds: 1, runs: 1, size: 64, xdpMode: 'native', progress: () => {} }), /burst/);
  assert.throws(() => checkDeviceWorkerOptions({ mode: 'rxonly', seconds: 1, runs: 1, size: 4000, xdpMode: 'native', progress: () => {} }), /size/);
  assert.match(await usageError(['device', '--backend', 'af-xdp', '--threads', '--queue-size', '300']), /--queue-size must be one of 256, 512, 1024/);
  assert.match(await usageError(['device', '--backend', 'af-xdp', '--queue-size', '1024']), /--threads/);
  assert.throws(() => checkDeviceWorkerOptions({ queueSize: 2048, seconds: 1, runs: 1, size: 64, xdpMode: 'native', progress: () => {} }), /queue-size/);
  assert.throws(() => checkDeviceWorkerOptions({ queueSize: 512, burst: 513, seconds: 1, runs: 1, size: 64, xdpMode: 'native', progress: () => {} }), /burst/);
  assert.not.throws(() => checkDeviceWorkerOptions({ queueSize: 1024, burst: 1024, seconds: 1, runs: 1, size: 64, xdpMode: 'native', progress: () => {} }));
  // A coalescing wait under 25 µs costs more than it gathers (io-fwd fell to 0.06 Mpps at 10 µs): refused; 0 is off.
  assert.throws(() => checkDeviceWorkerOptions({ coalesceUs: 10, seconds: 1, runs: 1, size: 64, xdpMode: 'native', progress: () => {} }), /coalesce-us: 10 µs is below the 25 µs/);
  for (const coalesceUs of [0, 25, 50]) assert.not.throws(() => checkDeviceWorkerOptions({ coalesceUs, seconds: 1, runs: 1, size: 64, xdpMode: 'native', progress: () => {} }));
});

test('bench device --threads refuses what checkDeviceWorkerOptions refuses as a usage error, before it prints the run header', async () => {
  const written: string[] = [];
  const write = process.stderr.write;
  process.stderr.write = ((chunk: string | Uint8Array): boolean => {
    written.push(String(chunk));
    return true;
  }) as typeof process.stderr.write;
  try {
    assert.match(await usageError(['device', '--backend', 'af-xdp', '--threads', '--queue-size', '256', '--burst', '300']), /burst: 300 is not 1\.\.256/);
    assert.match(await usageError(['device', '--backend', 'af-xdp', '--threads', '--coalesce-us', '10']), /coalesce-us: 10 µs/);
  } finally {
    process.stderr.write = write;
  }
  assert.equal(written, []);
});

test('bench device --threads takes bench pmd\'s virtqueue size by default', () => {
  assert.is(checkDeviceWorkerOptions({ seconds: 1, runs: 1, size: 64, xdpMode: 'native', progress: () => {} }).queueSize, DEFAULT_PMD_QUEUE_SIZE);
});

test('bench device --threads --queue-size 1024 with 8 pairs: 1024-entry rings, the driver RAM sized for them, frames counted at both ends', async () => {
  // 8 pairs of two 1024-entry rings of 2 KiB buffers need 32 MiB: more than the 16 MiB the bench starts from.
  const r = await benchDeviceWorker({ mode: 'txonly', queueSize: 1024, queues: 8, ioThreads: 1, seconds: 0.3, runs: 1, size: 64, xdpMode: 'native', progress: () => {} });
  assert.is((r.params as Record<string, unknown>).queueSize, 1024);
  const run = r.runs[0] as Record<string, number>;
  assert.ok(run.packets! > 0 && run.peerPackets! > 0, JSON.stringify(run));
  assert.ok(run.baselinePackets! > 0 && run.baselinePeerPackets! > 0, JSON.stringify(run));
});

for (const mode of ['txonly', 'rxonly', 'io-fwd'] as DeviceWorkerMode[]) {
  test(`bench device --threads --mode ${mode}: frames counted at both ends for the device and the raw C loop`, async () => {
    const r = await benchDeviceWorker({ mode, seconds: 0.5, runs: 1, size: 64, xdpMode: 'native', progress: () => {} });
    assert.is(r.workload, mode);
    assert.is(r.runs.length, 1);
    const run = r.runs[0] as Record<string, number>;
    const why = JSON.stringify(run);
    assert.ok(run.packets! > 0 && run.peerPackets! > 0, `device side counted nothing: ${why}`);
    assert.ok(run.baselinePackets! > 0 && run.baselinePeerPackets! > 0, `raw C side counted nothing: ${why}`);
    if (mode === 'rxonly') assert.ok(run.peerPackets! >= run.packets!, `the generator sent fewer frames than the driver received: ${why}`);
    if (mode === 'io-fwd') {
      assert.ok(run.rxUsed! >= run.packets!, `forwarded more than received: ${why}`);
      // The raw C forwarder beside raw C rx: what it sent back reached the peer, and no more than it forwarded.
      assert.ok(run.fwdBaselinePackets! > 0 && run.fwdBaselinePeerPackets! > 0, `raw C io-fwd counted nothing: ${why}`);
      assert.ok(run.fwdBaselinePeerPackets! <= run.fwdBaselinePackets!, `the peer saw more than the C forwarder sent: ${why}`);
      assert.ok(run.fwdBaselineGenerated! >= run.fwdBaselinePackets!, `the C forwarder sent more than the generator: ${why}`);
      assert.is(r.secondBaseline?.name, 'raw C io-fwd');
      assert.is((r.params as Record<string, unknown>).peerNapi, 'softirq');
      assert.ok(r.secondBaseline!.ratio > 0 && Number.isFinite(r.secondBaseline!.ratio));
      // The C forwarder's own share of raw C rx, run by run (the ceiling a forwarding device is measured against).
      const share = run.fwdBaselineMpps! / run.baselineMpps!;
      assert.ok(Math.abs(r.secondBaseline!.ofBaseline!.median - share) < 1e-9, `${r.secondBaseline!.ofBaseline!.median} vs ${share}`);
    } else assert.is(r.secondBaseline, undefined);
    if (mode === 'txonly') assert.ok(run.txUsed! > 0, why);
    const pm = r.perMillion!;
    for (const k of ['kicks', 'interrupts', 'polls', 'wakeups', 'sendto', 'recvfrom', 'fillRefills']) assert.ok(Number.isFinite(pm[k]), `perMillion.${k}`);
    // Frames that entered the device went through the Fill ring (rx) or were sent with sendto (tx).
    if (mode !== 'txonly') assert.ok(pm.fillRefills! > 0, JSON.stringify(pm));
    if (mode !== 'rxonly') assert.ok(pm.sendto! > 0, JSON.stringify(pm));
    assert.ok(r.ratio > 0 && Number.isFinite(r.ratio));
  });
}

for (const [mode, ioThreads] of [['txonly', 1], ['rxonly', 2], ['io-fwd', 1]] as Array<[DeviceWorkerMode, number]>) {
  test(`bench device --threads --mode ${mode} --queues 2 --io-threads ${ioThreads}: both pairs carry frames, per queue, for the device and the raw C loops`, async () => {
    const r = await benchDeviceWorker({ mode, queues: 2, ioThreads, seconds: 0.5, runs: 1, size: 64, xdpMode: 'native', progress: () => {} });
    const p = r.params as Record<string, unknown>;
    assert.is(p.queues, 2);
    assert.equal(p.threadOf, ioThreads === 1 ? [0, 0] : [0, 1]);
    assert.is((p.ioThreadCpus as unknown[]).length, ioThreads);
    const run = r.runs[0] as Record<string, unknown>;
    const why = JSON.stringify(run);
    const q = run.queueMpps as number[];
    const bq = run.baselineQueueMpps as number[];
    assert.is(q.length, 2);
    assert.ok(q.every((x) => x > 0), `a device pair moved nothing: ${why}`);
    // Two raw C receivers share the parent's XDP program (an interface takes one): each counts its own queue.
    assert.ok(bq.length === 2 && bq.every((x) => x > 0), `a C loop counted nothing: ${why}`);
    assert.ok((run.peerPackets as number) > 0 && (run.baselinePeerPackets as number) > 0, why);
    if (mode === 'io-fwd') {
      const fq = run.fwdBaselineQueueMpps as number[];
      assert.ok(fq.length === 2 && fq.every((x) => x > 0), `a C forwarder counted nothing: ${why}`);
    }
  });
}

test('bench device --queues/--io-threads: needs --threads, at most one thread per pair', async () => {
  assert.match(await usageError(['device', '--backend', 'af-xdp', '--queues', '2']), /--threads/);
  assert.match(await usageError(['device', '--backend', 'af-xdp', '--threads', '--queues', '2', '--io-threads', '3']), /at most one I\/O thread per queue pair/);
  assert.throws(() => checkDeviceWorkerOptions({ queues: 9, seconds: 1, runs: 1, size: 64, xdpMode: 'native', progress: () => {} }), /queues: 9 is not 1\.\.8/);
});

test('the VMM counters line of xdpvm run parses, and its pairs add up', () => {
  const pair = (n: number): Record<string, unknown> => ({
    pair: n, device: { rxFrames: 10 * (n + 1), interrupts: 1 }, worker: { sleeps: 2, wakeups: 2 }, backend: { txKicks: 3, rxKicks: 0, fillRefills: 4 },
    queueErrors: {}, broken: { cause: 'none', rx: null, tx: null }, kernel: { rxDropped: 1, rxInvalidDescs: 0, txInvalidDescs: 0, rxRingFull: 1, rxFillRingEmpty: 0, txRingEmpty: 0 },
  });
  const line = `xdpvm-counters ${JSON.stringify({ when: 'exit', nets: [{ id: 'n0', ifname: 'v', pairs: [pair(0), pair(1)] }] })}`;
  const v = parseVmmCounters(`xdpvm: guest debug-exit with status 0\n${line}\n`)!;
  assert.is(v.when, 'exit');
  const s = sumPairs(v.nets[0]!.pairs);
  assert.is(s.counters.device.rxFrames, 30);
  assert.is(s.counters.backend.fillRefills, 8);
  assert.is(s.kernel.rxRingFull, 2);
  assert.is(parseVmmCounters('xdpvm-counters {not json\n'), undefined);
});

test.run();
