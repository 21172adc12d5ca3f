// `xdpvm run` places its threads as told: -vcpu-cpus / -vcpu-nice for the
// vCPU threads, io-cpus= / io-nice= for each queue pair's I/O thread
// (poll-max-ns= and coalesce-us= ride along). Read back from /proc while the
// PMD guest receives, then the guest must finish its count as usual.
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PmdVm } from '../src/bench/pmd-vm';
import { parseVmmCounters } from '../src/bench/per-million';
import { VethPair } from '../src/host/netns';
import { kvmTest } from './support/kvm-guest';
import { describe, generator, TIMEOUT_MS, waitUntil } from './support/pmd-veth';

interface ThreadInfo {
  tid: number;
  comm: string;
  nice: number;
  cpus: string;
}

function threads(pid: number): ThreadInfo[] {
  const out: ThreadInfo[] = [];
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8');
      // Fields after the ")" of comm: state is field 3, nice field 19.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const status = readFileSync(`/proc/${pid}/task/${t}/status`, 'utf8');
      out.push({ tid: Number(t), comm: readFileSync(`/proc/${pid}/task/${t}/comm`, 'utf8').trim(), nice: Number(fields[16]), cpus: /Cpus_allowed_list:\s*(\S+)/.exec(status)?.[1] ?? '?' });
    } catch {
      // The thread ended meanwhile.
    }
  }
  return out;
}

kvmTest('thread placement: the vCPU thread runs on the CPU and at the niceness -vcpu-cpus/-vcpu-nice give, the I/O thread as io-cpus=/io-nice= give', async () => {
  const pair = new VethPair('place');
  try {
    const vm = PmdVm.start({
      netns: pair.a.netns, ifname: pair.a.ifname, append: 'mode=rxonly count=2000 timeout=60', timeoutMs: TIMEOUT_MS,
      runArgs: ['-vcpu-cpus', '0', '-vcpu-nice', '17'],
      deviceProps: ',io-cpus=0,io-nice=3,poll-max-ns=0,coalesce-us=50',
    });
    const gen = generator(pair, 100);
    let seen: ThreadInfo[] = [];
    let done = false;
    void vm.exited.then(() => (done = true));
    // Both threads exist once the guest is running: the I/O thread from backend open, the vCPU's from run().
    await waitUntil('the vCPU and I/O threads at their niceness', () => {
      if (done || vm.pid === undefined) return true;
      seen = threads(vm.pid);
      return seen.some((t) => t.nice === 17) && seen.some((t) => t.nice === 3);
    }, 60_000);
    const e = await vm.exited;
    gen.stop();
    await gen.done;
    // KVM starts its own worker in the process at the first KVM_RUN (kvm-nx-lpage-recovery), from the
    // vCPU thread, so it inherits that thread's niceness and CPUs: not ours to count.
    seen = seen.filter((t) => !t.comm.startsWith('kvm-'));
    const vcpu = seen.filter((t) => t.nice === 17);
    const io = seen.filter((t) => t.nice === 3);
    console.log(`# threads: ${seen.map((t) => `${t.tid} ${t.comm} nice ${t.nice} cpus ${t.cpus}`).join('; ')}`);
    assert.is(vcpu.length, 1, `one vCPU thread at niceness 17: ${JSON.stringify(seen)}`);
    assert.is(vcpu[0]!.cpus, '0');
    assert.is(io.length, 1, `one I/O thread at niceness 3: ${JSON.stringify(seen)}`);
    assert.is(io[0]!.cpus, '0');
    // Named as top and perf show them (host/thread-names.ts).
    assert.is(vcpu[0]!.comm, 'xdpvm-vcpu0');
    assert.is(io[0]!.comm, 'xdpvm-io0');
    // Every other thread keeps the process's niceness and CPUs.
    assert.ok(seen.filter((t) => t.nice !== 17 && t.nice !== 3).every((t) => t.nice === 0), JSON.stringify(seen));
    assert.is(e.code, 0, describe(e));
    assert.ok((e.result?.rx_packets ?? 0) >= 2000, describe(e));
    // The counters line carries both threads' CPU time (bench pmd's CPU per frame), the vCPU's as its thread ended.
    const threadsLine = parseVmmCounters(e.stderr)?.threads ?? [];
    for (const name of ['xdpvm-vcpu0', 'xdpvm-io0']) {
      const t = threadsLine.find((x) => x.name === name);
      assert.ok(t !== undefined && t.runNs > 0, `${name} in the counters line: ${JSON.stringify(threadsLine)}`);
    }
  } finally {
    pair.remove();
  }
});

test.run();
