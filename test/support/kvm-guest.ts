// Test support for the KVM tests: whether /dev/kvm is here and which KVM it
// is (none, PVM, hardware), a tiny
// real-mode guest (64 KiB of RAM at 0, code at 0x1000, CS:IP = 0:0x1000),
// a watchdog that kicks a vCPU stuck in KVM_RUN, and an fd counter.
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { test } from 'uvu';
import { GuestRam, Kvm, kvmHostKind, Vcpu, Vm, type ExitReason, type KvmHostKind } from '../../src/kvm';
import { skipTest } from './skip';

export const KVM_DEVICE = '/dev/kvm';
export const HAVE_KVM = existsSync(KVM_DEVICE);
export const KVM_HOST: KvmHostKind = kvmHostKind();
/**
 * scripts/test.mjs sets this where it provides /dev/kvm (on the host, or in
 * the TCG harness): a missing device is then the harness's failure, and the
 * tests fail instead of being skipped.
 */
const KVM_REQUIRED = process.env.XDPVM_REQUIRE_KVM === '1';

/** A test that needs /dev/kvm; without one it is a counted skip, or a failure where the runner promised KVM. */
export function kvmTest(name: string, fn: () => void | Promise<void>): void {
  if (HAVE_KVM) test(name, fn);
  else if (KVM_REQUIRED) {
    test(name, () => {
      throw new Error(`${KVM_DEVICE} is missing although the test runner provides KVM here (did the harness load kvm_amd?)`);
    });
  } else skipTest(name, `${KVM_DEVICE} missing`);
}

export function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

export const RAM_SIZE = 0x10000;
export const CODE_GPA = 0x1000;

export interface RealModeGuest {
  kvm: Kvm;
  vm: Vm;
  vcpu: Vcpu;
  ram: GuestRam;
  /** run() with the watchdog armed: a guest stuck for `ms` comes back as ExitReason.Intr. */
  run(ms?: number): ExitReason;
  close(): void;
}

export interface GuestOptions {
  irqchip?: boolean;
  /** Called after the VM and its memory exist, before the vCPU is created. */
  beforeVcpu?: (vm: Vm) => void;
}

export function realModeGuest(code: readonly number[], opts: GuestOptions = {}): RealModeGuest {
  const kvm = Kvm.open(KVM_DEVICE);
  const vm = kvm.createVm();
  const ram = GuestRam.allocate(RAM_SIZE);
  vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: 0, memory: ram.bytes });
  if (opts.irqchip) vm.createIrqchip();
  opts.beforeVcpu?.(vm);
  const vcpu = vm.createVcpu(0);
  ram.bytes.set(code, CODE_GPA);
  // Reset state has CS.base 0xffff0000 (the BIOS alias): point CS:IP at our code instead.
  const s = vcpu.getSregs();
  s.cs.base = 0n;
  s.cs.selector = 0;
  vcpu.setSregs(s);
  const r = vcpu.getRegs();
  r.rip = BigInt(CODE_GPA);
  r.rflags = 2n;
  r.rsp = 0xf000n;
  vcpu.setRegs(r);
  vcpu.bindThread();
  const dog = new Watchdog(vcpu);
  return {
    kvm,
    vm,
    vcpu,
    ram,
    run: (ms = 20_000) => dog.run(ms),
    close() {
      dog.stop();
      vcpu.unbindThread();
      vcpu.close();
      vm.close();
      ram.release();
      kvm.close();
    },
  };
}

/** Kicks the vCPU if one run() takes longer than asked (so a broken guest fails instead of hanging). */
class Watchdog {
  private readonly state = new Int32Array(new SharedArrayBuffer(8));
  private readonly worker: Worker;
  private seq = 0;

  constructor(private readonly vcpu: Vcpu) {
    this.worker = new Worker(path.join(__dirname, 'kvm-watchdog-worker.js'), {
      workerData: { vcpu: vcpu.handle(), state: this.state.buffer },
    });
    this.worker.unref();
  }

  run(ms: number): ExitReason {
    this.seq = (this.seq % 0x3fffffff) + 1;
    Atomics.store(this.state, 1, ms);
    Atomics.store(this.state, 0, this.seq);
    Atomics.notify(this.state, 0);
    try {
      return this.vcpu.run();
    } finally {
      Atomics.store(this.state, 0, 0);
      Atomics.notify(this.state, 0);
    }
  }

  stop(): void {
    Atomics.store(this.state, 0, -1);
    Atomics.notify(this.state, 0);
    void this.worker.terminate();
  }
}
