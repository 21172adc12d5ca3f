// Boots the PMD test guest (guest-images/pmd) under KVM with one vCPU run
// from this thread: the guest finds the virtio-net PCI function through
// 0xCF8/0xCFC, initialises it through BAR 0 MMIO like any driver, and
// polls its rings in ring 3. The device sits over a LoopbackQueue, so what
// the guest transmits comes back as received frames. A minimal run loop
// routes PIO exits (console, PCI configuration, exit and fault ports) and
// MMIO exits to the PciBus (test/support/pmd-machine.ts), and services the
// device after every exit; a helper thread kicks the vCPU out of KVM_RUN
// every millisecond so the device is also serviced while the guest polls
// without exiting (the VMM's I/O threads do that job).
import * as assert from 'uvu/assert';
import { test } from 'uvu';
import { readFileSync, writeSync } from 'node:fs';
import { isMainThread, MessageChannel, receiveMessageOnPort, Worker, workerData, type MessagePort } from 'node:worker_threads';
import { detectPvm, ExitReason, GuestRam, IoDirection, Kvm, maskCpuidForPvm, Vcpu, type VcpuHandle } from '../src/kvm';
import { ensurePmdImage } from '../src/guest-build/pmd';
import { applyBootState, describeGuestFault, hostTscKhz, loadBareMetal, readGuestFault } from '../src/vmm/loader';
import { KVM_DEVICE, kvmTest } from './support/kvm-guest';
import { PMD_MMIO, PMD_RAM_SIZE, PmdMachine, registerPmdLoopbackTests, type PmdRun, type PmdRunOptions } from './support/pmd-machine';

const KICK_PERIOD_MS = 1;

/**
 * One helper thread for the whole file kicks the current vCPU out of KVM_RUN
 * every KICK_PERIOD_MS. Worker start-up takes long under an emulated CPU, so
 * it starts once and is handed each run's vCPU through a MessagePort it polls
 * synchronously (its own event loop never runs: it sleeps in Atomics.wait).
 * state[0]: generation asked for, state[1]: generation the kicker is on,
 * state[2]: exits the run loop has seen. If that count stands still for
 * STALL_MS while a vCPU is being kicked, the run loop is stuck where no test
 * timeout can reach it (inside KVM_RUN): the kicker says so and kills the
 * process rather than let the suite hang.
 */
const STALL_MS = 120_000;

interface KickerData {
  kind: 'kicker';
  port: MessagePort;
  state: SharedArrayBuffer;
  periodMs: number;
}

interface KickerMessage {
  generation: number;
  vcpu: VcpuHandle | null;
}

function kickerMain(): void {
  const d = workerData as KickerData;
  const state = new Int32Array(d.state);
  let vcpu: Vcpu | undefined;
  let seen = -1;
  let since = Date.now();
  for (;;) {
    for (let m = receiveMessageOnPort(d.port); m; m = receiveMessageOnPort(d.port)) {
      const msg = m.message as KickerMessage;
      vcpu = msg.vcpu ? Vcpu.attach(msg.vcpu) : undefined;
      since = Date.now();
      Atomics.store(state, 1, msg.generation);
      Atomics.notify(state, 1);
    }
    if (Atomics.wait(state, 0, Atomics.load(state, 1), d.periodMs) !== 'timed-out' || !vcpu) continue;
    vcpu.kick();
    const exits = Atomics.load(state, 2);
    if (exits !== seen) {
      seen = exits;
      since = Date.now();
    } else if (Date.now() - since > STALL_MS) {
      writeSync(2, `pmd-boot-loopback: the vCPU run loop made no progress for ${STALL_MS} ms despite kicks (stuck in KVM_RUN?): killing the test process\n`);
      process.kill(process.pid, 'SIGKILL');
    }
  }
}

class Kicker {
  readonly state = new Int32Array(new SharedArrayBuffer(12));
  private readonly channel = new MessageChannel();
  private readonly worker: Worker;
  private generation = 0;

  constructor(periodMs: number) {
    this.worker = new Worker(__filename, {
      workerData: { kind: 'kicker', port: this.channel.port2, state: this.state.buffer, periodMs } satisfies KickerData,
      transferList: [this.channel.port2],
    });
    this.worker.unref();
  }

  /** Kicks `vcpu` from now on (null: nobody); returns once the kicker has switched. */
  use(vcpu: VcpuHandle | null, timeoutMs = 120_000): void {
    const generation = ++this.generation;
    this.channel.port1.postMessage({ generation, vcpu } satisfies KickerMessage);
    Atomics.store(this.state, 0, generation);
    Atomics.notify(this.state, 0);
    const until = Date.now() + timeoutMs;
    while (Atomics.load(this.state, 1) !== generation) {
      if (Date.now() > until) throw new Error(`the kicker thread did not take vCPU generation ${generation} within ${timeoutMs} ms`);
      Atomics.wait(this.state, 1, Atomics.load(this.state, 1), 100);
    }
  }
}

let kicker: Kicker | undefined;

/**
 * A secondary vCPU run by its own thread. With queues=1 the PMD gives it no
 * queue pair: it waits for vCPU 0's set-up, reports itself done in guest
 * memory and spins, so it never exits unless something is wrong.
 * state: [0] 1 = stop, [1] 1 = running, [2] 1 = finished, [3] unexpected exit reason, [4] KVM_RUN calls.
 */
interface ApData {
  kind: 'ap';
  vcpu: VcpuHandle;
  state: SharedArrayBuffer;
}

function apMain(d: ApData): void {
  const state = new Int32Array(d.state);
  const vcpu = Vcpu.attach(d.vcpu);
  vcpu.bindThread();
  Atomics.store(state, 1, 1);
  Atomics.notify(state, 1);
  while (Atomics.load(state, 0) === 0) {
    const reason = vcpu.run();
    Atomics.add(state, 4, 1);
    if (reason !== ExitReason.Intr) {
      Atomics.store(state, 3, reason);
      break;
    }
  }
  vcpu.unbindThread();
  Atomics.store(state, 2, 1);
  Atomics.notify(state, 2);
}

interface Ap {
  vcpu: Vcpu;
  state: Int32Array;
  worker: Worker;
}

function waitFor(state: Int32Array, index: number, what: string, timeoutMs = 120_000): void {
  const until = Date.now() + timeoutMs;
  while (Atomics.load(state, index) === 0) {
    if (Date.now() > until) throw new Error(`${what} within ${timeoutMs} ms`);
    Atomics.wait(state, index, 0, 100);
  }
}

/**
 * One PMD run under KVM. With vcpus > 1 the extra vCPUs run in threads of
 * their own and the VM has no in-kernel irqchip: with one, KVM starts every
 * vCPU but 0 in wait-for-SIPI, and the bindings have no KVM_SET_MP_STATE to
 * make them runnable (this guest takes no interrupts, so it needs none).
 */
function runUnderKvm(o: PmdRunOptions, vcpus = 1): PmdRun {
  const image = readFileSync(ensurePmdImage());
  const kvm = Kvm.open(KVM_DEVICE);
  const vm = kvm.createVm();
  const ram = GuestRam.allocate(PMD_RAM_SIZE);
  let vcpu: Vcpu | undefined;
  const aps: Ap[] = [];
  kicker ??= new Kicker(KICK_PERIOD_MS);
  try {
    vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: 0, memory: ram.bytes });
    if (vcpus === 1) {
      vm.createIrqchip();
      vm.createPit2();
    }
    vcpu = vm.createVcpu(0);
    vcpu.bindThread();
    const m = new PmdMachine(ram.bytes, o);
    const boot = loadBareMetal({ ram: ram.bytes, image, commandLine: o.commandLine, vcpus, mmio: PMD_MMIO, tscKhz: hostTscKhz() });
    const supported = kvm.supportedCpuid();
    const cpuid = detectPvm().pvm ? maskCpuidForPvm(supported) : supported;
    vcpu.setCpuid(cpuid);
    applyBootState(vcpu, boot.vcpus[0]!);
    for (let i = 1; i < vcpus; i++) {
      const ap = vm.createVcpu(i);
      ap.setCpuid(cpuid);
      applyBootState(ap, boot.vcpus[i]!);
      const state = new Int32Array(new SharedArrayBuffer(20));
      const worker = new Worker(__filename, { workerData: { kind: 'ap', vcpu: ap.handle(), state: state.buffer } satisfies ApData });
      worker.unref();
      aps.push({ vcpu: ap, state, worker });
    }
    for (const [i, ap] of aps.entries()) waitFor(ap.state, 1, `vCPU ${i + 1}'s thread did not start`);
    kicker.use(vcpu.handle());
    m.restartClock();

    while (m.running) {
      const reason = vcpu.run();
      Atomics.add(kicker.state, 2, 1);
      switch (reason) {
        case ExitReason.Io: {
          m.exits.io++;
          const size = vcpu.ioSize;
          const base = vcpu.ioDataOffset;
          for (let i = 0; i < vcpu.ioCount; i++) {
            const data = vcpu.runBytes.subarray(base + i * size, base + (i + 1) * size);
            if (vcpu.ioDirection === IoDirection.Out) m.out(vcpu.ioPort, data);
            else m.in(vcpu.ioPort, data);
          }
          if (m.faulted) {
            const rsp = vcpu.getRegs().rsp;
            const f = readGuestFault(ram.bytes, Number(rsp), Number(vcpu.getSregs().cr2));
            m.setFault(f ? describeGuestFault(f) : `fault port written with rsp 0x${rsp.toString(16)}`);
          }
          break;
        }
        case ExitReason.Mmio:
          m.exits.mmio++;
          m.mmio(vcpu.mmioAddress, vcpu.mmioData.subarray(0, vcpu.mmioLen), vcpu.mmioIsWrite);
          break;
        case ExitReason.Intr:
          m.exits.intr++;
          break;
        default: {
          const r = vcpu.getRegs();
          let extra = '';
          if (reason === ExitReason.InternalError) extra = ` suberror ${vcpu.internalSuberror}`;
          if (reason === ExitReason.FailEntry) extra = ` reason 0x${vcpu.failEntryReason.toString(16)}`;
          m.fail(`unexpected exit ${reason}${extra} at rip 0x${r.rip.toString(16)} rsp 0x${r.rsp.toString(16)}`);
        }
      }
      m.afterExit();
      for (const [i, ap] of aps.entries()) {
        const reason = Atomics.load(ap.state, 3);
        if (reason !== 0) m.fail(`vCPU ${i + 1} exited (reason ${reason}) at rip 0x${ap.vcpu.getRegs().rip.toString(16)}`);
      }
    }
    const run = m.finish();
    for (const [i, ap] of aps.entries()) {
      if (Atomics.load(ap.state, 4) !== 0) m.fail(`vCPU ${i + 1} left KVM_RUN ${Atomics.load(ap.state, 4)} times before the end`);
    }
    return run;
  } finally {
    // No kick may reach kvm_run once it is unmapped.
    kicker.use(null);
    for (const ap of aps) {
      Atomics.store(ap.state, 0, 1);
      ap.vcpu.kick();
      waitFor(ap.state, 2, 'a secondary vCPU thread did not stop', 30_000);
      ap.vcpu.close();
    }
    vcpu?.unbindThread();
    vcpu?.close();
    vm.close();
    ram.release();
    kvm.close();
  }
}

if (isMainThread) {
  registerPmdLoopbackTests('KVM', kvmTest, runUnderKvm);

  kvmTest('KVM: guest exceptions reach the VMM through its IDT, TSS and stubs, with vector, RIP and CR2', () => {
    const pf = runUnderKvm({ commandLine: 'fault=pf' });
    console.log(`# KVM fault=pf: ${pf.fault} (wall ${pf.wallMs.toFixed(1)} ms)`);
    assert.is(pf.status, -1, pf.console);
    // #PF from a ring-3 read of a not-present page: error code U/S = 1, W/R = 0, P = 0.
    assert.match(pf.fault ?? '', /^guest exception 14 \(#PF page fault\) error code 0x4 at rip 0x40[0-9a-f]{4} cs 0x2b .* cr2 0x10$/);
    const gp = runUnderKvm({ commandLine: 'fault=gp' });
    assert.match(gp.fault ?? '', /^guest exception 13 \(#GP general protection\) error code 0x0 at rip 0x40/, gp.console);
    const ud = runUnderKvm({ commandLine: 'fault=ud' });
    assert.match(ud.fault ?? '', /^guest exception 6 \(#UD invalid opcode\) error code 0x0 at rip 0x40/, ud.console);
  });

  kvmTest('KVM: two vCPUs enter together; vCPU 1 waits for vCPU 0 to set up the device, and vCPU 0 for it to finish', () => {
    const r = runUnderKvm({ commandLine: 'mode=txonly count=500' }, 2);
    console.log(`# KVM 2 vCPUs: exit ${r.status}, wall ${r.wallMs.toFixed(1)} ms, TSC ${r.result?.tsc_khz} kHz (${/TSC calibrated/.test(r.console) ? 'calibrated' : 'from the host'})`);
    assert.is(r.status, 0, r.console);
    assert.ok(r.console.includes('boot: 2 vCPU(s)'), r.console);
    assert.is(r.result?.vcpus, 2);
    assert.is(r.result?.tx_packets, 500);
  });

  test.run();
} else if ((workerData as { kind: string }).kind === 'ap') {
  apMain(workerData as ApData);
} else {
  kickerMain();
}
