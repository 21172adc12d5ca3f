// Where bench pmd puts its threads, and the xdpvm run options that say so.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { defaultPmdIoThreads, defaultPmdPlacement, placementRunArgs, pmdPlacement } from '../src/bench/pmd-placement';

test('shared on 2 CPUs, 1 pair: vCPU, I/O thread and C loop on the last CPU, the generator alone on the first, the shared-CPU policy', () => {
  const p = pmdPlacement('shared', 1, 2);
  assert.equal([p.vcpuCpus, p.ioCpus, p.loopCpus, p.generatorCpus], [[1], [1], [1], [0]]);
  assert.equal(placementRunArgs(p), { args: ['-vcpu-cpus', '1', '-vcpu-nice', '19'], deviceProps: ',io-cpus=1,poll-max-ns=1000000,coalesce-us=50' });
});

test('shared on 2 CPUs, 2 pairs: one CPU per pair, generators left to the scheduler', () => {
  const p = pmdPlacement('shared', 2, 2);
  assert.equal([p.vcpuCpus, p.ioCpus, p.loopCpus, p.generatorCpus], [[1, 0], [1, 0], [1, 0], [undefined, undefined]]);
  assert.equal(placementRunArgs(p).args, ['-vcpu-cpus', '1:0', '-vcpu-nice', '19']);
});

test('split, an I/O thread per pair taking every CPU: vCPU k on CPU k, its I/O thread and C loop counted down from the last, the runner\'s own polling', () => {
  const p = pmdPlacement('split', 2, 2);
  assert.equal([p.vcpuCpus, p.ioCpus, p.loopCpus], [[0, 1], [1, 0], [1, 0]]);
  assert.equal(placementRunArgs(p), { args: ['-vcpu-cpus', '0:1'], deviceProps: ',io-cpus=1:0' });
});

test('2 pairs on 1 I/O thread: iothread-vq-mapping=0:0 and the one thread\'s CPU; 4 pairs on 2 threads round-robin', () => {
  const p = pmdPlacement('split', 2, 2, 1);
  // The vCPUs take the CPU the one I/O thread leaves them.
  assert.equal([p.threadOf, p.vcpuCpus, p.ioCpus], [[0, 0], [0, 0], [1]]);
  assert.equal(placementRunArgs(p), { args: ['-vcpu-cpus', '0:0'], deviceProps: ',iothread-vq-mapping=0:0,io-cpus=1' });
  const q = pmdPlacement('shared', 4, 8, 2);
  assert.equal([q.threadOf, q.ioCpus], [[0, 1, 0, 1], [7, 6]]);
  assert.equal(pmdPlacement('none', 2, 8, 1).threadOf, [0, 0], 'mapping kept when nothing is pinned');
  assert.is(placementRunArgs(pmdPlacement('none', 2, 8, 1)).deviceProps, ',iothread-vq-mapping=0:0');
});

test('default I/O threads: split leaves the vCPUs a CPU (2 pairs on 2 CPUs share one thread), one per pair otherwise', () => {
  assert.is(defaultPmdIoThreads('split', 1, 2), 1);
  assert.is(defaultPmdIoThreads('split', 2, 2), 1);
  assert.is(defaultPmdIoThreads('split', 2, 4), 2);
  assert.is(defaultPmdIoThreads('split', 4, 4), 3);
  assert.is(defaultPmdIoThreads('shared', 2, 2), 2);
  assert.is(defaultPmdIoThreads('none', 2, 2), 2);
  const p = pmdPlacement('split', 2, 4, defaultPmdIoThreads('split', 2, 4));
  assert.equal([p.vcpuCpus, p.ioCpus], [[0, 1], [3, 2]]);
});

test('none, or a single CPU: nothing pinned, no options', () => {
  for (const p of [pmdPlacement('none', 2, 8), pmdPlacement('shared', 1, 1)]) {
    assert.is(p.name, 'none');
    assert.equal(placementRunArgs(p), { args: [], deviceProps: '' });
  }
});

test('defaults: txonly split (no generator), rxonly and io-fwd shared', () => {
  assert.is(defaultPmdPlacement('txonly'), 'split');
  assert.is(defaultPmdPlacement('rxonly'), 'shared');
  assert.is(defaultPmdPlacement('io-fwd'), 'shared');
});

test.run();
