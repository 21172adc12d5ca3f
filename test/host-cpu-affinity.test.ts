// Pinning the calling thread: a worker thread pins itself without moving the
// main thread, and a CPU the process cannot use is refused, not half-applied.
import { readdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { benchCpus, pinOtherThreads, pinThisThread, thisThreadId, unpinThisThread, unpinThreads } from '../src/host/cpu-affinity';
import { sys } from '../src/native/sys';

const allowed = (): string => /Cpus_allowed_list:\s*(\S+)/.exec(readFileSync('/proc/thread-self/status', 'utf8'))![1]!;
const ALL = Array.from({ length: availableParallelism() }, (_, i) => i);

test('a worker thread pins itself to one CPU; the main thread keeps its set', async () => {
  const before = allowed();
  const cpu = availableParallelism() - 1;
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    const { pinThisThread } = require(workerData.module);
    const ok = pinThisThread(workerData.cpu, 'test worker');
    const list = /Cpus_allowed_list:\\s*(\\S+)/.exec(require('node:fs').readFileSync('/proc/thread-self/status', 'utf8'))[1];
    parentPort.postMessage({ ok, list });`;
  const w = new Worker(code, { eval: true, workerData: { cpu, module: require.resolve('../src/host/cpu-affinity') } });
  const got = await new Promise<{ ok: boolean; list: string }>((resolve, reject) => {
    w.once('message', resolve);
    w.once('error', reject);
  });
  await w.terminate();
  assert.ok(got.ok);
  assert.is(got.list, String(cpu));
  assert.is(allowed(), before, 'the main thread did not move');
});

test('a CPU beyond the machine is refused and the thread stays where it was', () => {
  const before = allowed();
  assert.is(pinThisThread(1023, 'test'), false);
  assert.is(allowed(), before);
  assert.throws(() => sys.setThreadAffinity([-1]), /out of range/);
  assert.throws(() => sys.setThreadAffinity([1 << 20]), /out of range/);
  assert.is(sys.setThreadAffinity(ALL), 0);
});

test('pinOtherThreads moves every other thread of the process to one CPU, leaves the excepted ones, and unpinThreads undoes it', () => {
  const list = (tid: string): string => /Cpus_allowed_list:\s*(\S+)/.exec(readFileSync(`/proc/self/task/${tid}/status`, 'utf8'))![1]!;
  const me = thisThreadId();
  const before = allowed();
  const others = readdirSync('/proc/self/task').filter((t) => Number(t) !== me);
  assert.ok(others.length > 0, 'Node runs helper threads');
  const pinned = pinOtherThreads(0, [me]);
  try {
    assert.equal([...pinned].sort(), others.map(Number).sort());
    for (const t of others) assert.is(list(t), '0', `thread ${t}`);
    assert.is(allowed(), before, 'the excepted thread keeps its set');
  } finally {
    unpinThreads(pinned);
  }
  for (const t of others) assert.is(list(t), list(String(me)), `thread ${t} back on every CPU`);
});

test('benchCpus gives the same answer from a thread that pinned itself to one CPU', () => {
  const before = benchCpus();
  assert.equal(before, ALL.length >= 2 ? { driver: 0, io: ALL.length - 1 } : undefined);
  assert.ok(pinThisThread(0, 'test'));
  try {
    assert.is(allowed(), '0');
    assert.equal(benchCpus(), before);
  } finally {
    unpinThisThread();
  }
});

test.run();
