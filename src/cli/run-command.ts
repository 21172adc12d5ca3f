// `xdpvm run ...`: boots a guest in the VMM with virtio-net devices on AF_XDP.
// The serial console is stdout; SIGINT/SIGTERM end the run and tear down
// everything (no XDP program stays attached). The exit status is the guest's
// debug-exit status, 0 after a shutdown or reset, 1 after an error. Every
// queue pair's counters, and the CPU time of the vCPU and I/O threads, go to
// stderr as one JSON line (`xdpvm-counters {...}`) on exit and on SIGUSR1.
import { existsSync, fstatSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { bootPlanFor } from '../vmm/boot-plan';
import { BootTimeline } from '../vmm/boot-timeline';
import { Machine, type Accelerator } from '../vmm/machine';
import { parseRunOptions } from '../vmm/run-options';
import { UsageError } from './args';

export const RUN_USAGE = `usage: xdpvm run [-m SIZE] [-smp N] -kernel FILE [-initrd FILE] [-append "..."]
                 [-iopl 0|3] [-timeline] [-vcpu-cpus C0:C1:...] [-vcpu-nice N] [-accel kvm|hosted[,vcpu=FILE]]
                 [-netdev af-xdp,id=ID,ifname=IF[,...] -device virtio-net-pci,netdev=ID[,mac=MAC][,io-cpus=C0:C1:...]
                                                  [,poll-max-ns=N][,coalesce-us=N][,io-nice=N]]...
  -vcpu-cpus    pin vCPU i's thread to host CPU Ci; -vcpu-nice: the vCPU threads' niceness
  io-cpus=      pin queue pair i's I/O thread to host CPU Ci; poll-max-ns=: how long an idle I/O thread busy-polls
                (default 50000); coalesce-us=: wait after a round with few frames, so frames come in batches; io-nice=
  A vCPU that shares its CPU with its I/O thread: poll-max-ns=1000000,coalesce-us=50 and -vcpu-nice 19 (README, Queues and CPUs;
                with coalesce-us=, the poll bound is spent in naps of that length, not spinning)
  -iopl 0    enter a bare-metal guest with RFLAGS.IOPL = 0 (as a PVM host runs ring 3): port I/O by the TSS bitmap only
  -accel hosted  no KVM: each vCPU is a process running the PMD test guest's hosted build (vcpu=, default
             pmd-hosted beside -kernel) on guest RAM, its port and MMIO accesses relayed as exits (no /dev/kvm needed)
  -timeline  at the end, print on stderr 'xdpvm: boot timeline {...}': ms from process start to each boot phase`;

function readInput(what: string, file: string): Uint8Array {
  try {
    return readFileSync(file);
  } catch (e) {
    throw new UsageError(`${what}: cannot read '${file}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

/** Linux's /dev/null: character device 1:3. */
const DEV_NULL_RDEV = (1 << 8) | 3;
const CONSOLE_INPUT_LATEST_MS = 1000;

/**
 * stdin feeds COM1's receiver, line by line (the terminal stays cooked: Ctrl-C still stops the run). It is read
 * from the guest's first DRIVER_OK or a second into the run, whichever comes first: creating process.stdin
 * loads Node's stream modules (15-50 ms of this thread here), which would otherwise sit between the VM and its
 * first exits; the terminal keeps what is typed meanwhile. A stdin on /dev/null (benches, tests) is never read.
 * Returns what ends the reading.
 */
function attachConsoleInput(machine: Machine): () => void {
  try {
    const st = fstatSync(0);
    if (st.isCharacterDevice() && st.rdev === DEV_NULL_RDEV) return () => {};
  } catch {
    return () => {}; // no stdin at all
  }
  let attached = false;
  let closed = false;
  const onInput = (b: Buffer): void => machine.consoleInput(b);
  const attach = (): void => {
    if (attached || closed) return;
    attached = true;
    clearTimeout(timer);
    process.stdin.on('data', onInput);
    process.stdin.on('error', () => process.stdin.off('data', onInput));
  };
  const timer = setTimeout(attach, CONSOLE_INPUT_LATEST_MS);
  machine.nets[0]?.pci.onDriverOk(attach);
  return () => {
    closed = true;
    clearTimeout(timer);
    if (!attached) return;
    process.stdin.off('data', onInput);
    process.stdin.pause();
    process.stdin.destroy();
  };
}

/** The hosted vCPU's executable: vcpu=, else the PMD image's hosted build beside it (guest-images/pmd/build.sh makes both). */
function accelerator(a: ReturnType<typeof parseRunOptions>['accel'], kernelPath: string): Accelerator {
  if (a.kind === 'kvm') return a;
  const executable = a.vcpu ?? path.join(path.dirname(kernelPath), 'pmd-hosted');
  if (!existsSync(executable)) throw new UsageError(`-accel hosted: no hosted vCPU executable '${executable}'${a.vcpu ? '' : ' beside -kernel (give vcpu=FILE)'}`);
  return { kind: 'hosted', executable };
}

export async function runCommand(argv: readonly string[]): Promise<number> {
  const timeline = new BootTimeline();
  timeline.mark('modulesLoaded');
  const o = parseRunOptions(argv);
  const kernel = readInput('-kernel', o.kernel);
  const initrd = o.initrd !== undefined ? { bytes: readInput('-initrd', o.initrd), path: o.initrd } : undefined;
  const load = bootPlanFor(kernel, o.kernel, o.append, initrd, o.iopl, o.accel.kind === 'hosted');
  const accel = accelerator(o.accel, o.kernel);
  let pending: number[] = [];
  const flush = (): void => {
    if (pending.length) process.stdout.write(Buffer.from(pending));
    pending = [];
  };
  const machine = new Machine({
    memoryBytes: o.memoryBytes,
    cpus: o.cpus,
    nets: o.nets,
    load,
    console: (b) => {
      pending.push(b);
      if (b === 10 || pending.length >= 4096) flush();
    },
    warn: (line) => void process.stderr.write(`${line}\n`),
    timeline,
    ...(o.vcpuCpus ? { vcpuCpus: o.vcpuCpus } : {}),
    ...(o.vcpuNice !== undefined ? { vcpuNice: o.vcpuNice } : {}),
    accel,
  });
  const closeInput = attachConsoleInput(machine);
  const onSignal = (sig: NodeJS.Signals): void => machine.stop(`${sig}`);
  const printCounters = (when: 'exit' | 'SIGUSR1'): void =>
    void process.stderr.write(`xdpvm-counters ${JSON.stringify({ when, nets: machine.nets.map((n) => n.stats()), threads: machine.threadCpu() })}\n`);
  const onUsr1 = (): void => printCounters('SIGUSR1');
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGUSR1', onUsr1);
  try {
    const r = await machine.run();
    flush();
    process.stderr.write(`xdpvm: guest ${r.reason}${r.reason === 'debug-exit' ? ` with status ${r.status}` : ''}${r.detail ? `: ${r.detail}` : ''}\n`);
    if (o.timeline) process.stderr.write(`xdpvm: boot timeline ${JSON.stringify(timeline)}\n`);
    return r.reason === 'debug-exit' ? r.status : r.reason === 'error' ? 1 : 0;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('SIGUSR1', onUsr1);
    closeInput();
    // Before close: the sockets' kernel counters are still there to read (the workers' stay readable either way).
    printCounters('exit');
    await machine.close();
  }
}
