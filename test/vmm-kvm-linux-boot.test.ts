// Boots the host's Debian kernel under our own KVM code through the Linux
// loader, with a busybox initramfs built here, and checks that the kernel
// prints its banner on COM1, finds the MP table, and runs /init (which
// prints a marker and reboots through the i8042).
//
// Where it runs: a host with /dev/kvm and ring 0 in hardware (a second or
// two to /init, held to XDPVM_LINUX_BOOT_MAX_MS), or the nested KVM inside
// the TCG harness (scripts/kvm-in-tcg.sh: under a minute for one vCPU, not
// timed). Not on a PVM host: there ring 0 runs in KVM's instruction
// emulator, which stops a stock kernel at its int3 self-test, so the tests
// are counted skips with that reason.
//
// Test 1 drives one vCPU with a run loop of its own (src/kvm + the platform
// devices), so it depends on nothing but the loader and KVM. Test 2 boots
// through the Machine (vCPU worker threads, exit mailboxes) with
// XDPVM_LINUX_BOOT_MACHINE_CPUS vCPUs (default 2); it is opt-in (set that
// variable) because one boot costs several minutes in the TCG harness;
// unset, it is a counted skip.
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ExitReason, IoDirection, Kvm, GuestRam } from '../src/kvm';
import { GuestMemory } from '../src/memory/guest-memory';
import { DebugExit, DEBUG_EXIT_PORT } from '../src/vmm/devices/debug-exit';
import { I8042_COMMAND, I8042Reset } from '../src/vmm/devices/i8042-reset';
import { PortIoBus } from '../src/vmm/devices/port-io-bus';
import { COM1_BASE, COM1_IRQ, Serial8250 } from '../src/vmm/devices/serial-8250';
import { loadLinux, linuxLoader, type LinuxBootOptions } from '../src/vmm/loader/linux-loader';
import { Machine } from '../src/vmm/machine';
import { KVM_IDENTITY_MAP_ADDR, KVM_TSS_ADDR, ramSlots } from '../src/vmm/memory-layout';
import { KVM_HOST, kvmTest } from './support/kvm-guest';
import { KERNEL_PATH } from './support/linux-loader-rig';
import { skipTest } from './support/skip';

const KERNEL = KERNEL_PATH;
const BUSYBOX = '/bin/busybox';
const MARKER = 'XDPVM-LINUX-INIT-OK';
/** Prefix of the kernel log lines /init copies to the console. */
const DMESG = 'XDPVM-DMESG:';
const MEMORY = 256 << 20;
/**
 * loglevel=6: notices and up (the "Linux version" banner is a notice), not
 * the hundreds of info lines, each byte of which is two exits.
 */
const COMMAND_LINE = 'console=ttyS0 earlyprintk=ttyS0 panic=-1 reboot=k loglevel=6';
/** Generous: inside the TCG harness every guest instruction is emulated, twice over. */
const TIMEOUT_MS = Number(process.env.XDPVM_LINUX_BOOT_TIMEOUT_MS ?? 20 * 60 * 1000);
const MACHINE_CPUS = process.env.XDPVM_LINUX_BOOT_MACHINE_CPUS;
/**
 * With hardware virtualization the boot to /init takes a second or two; the
 * limit only applies there. Under an emulated CPU (QEMU TCG, as in the
 * harness) every instruction is interpreted and the time is only reported.
 */
const EMULATED_CPU = /QEMU TCG/.test(readFileSync('/proc/cpuinfo', 'utf8'));
const FAST_LIMIT_MS = Number(process.env.XDPVM_LINUX_BOOT_MAX_MS ?? 10_000);

const PVM_REASON = "PVM host (/sys/module/kvm_pvm): guest ring 0 runs in KVM's instruction emulator, which cannot take a stock kernel past its int3 self-test";

/** What the boot needs that `npm test` installs; missing, the test fails with this. */
function missingInput(): string | undefined {
  if (!existsSync(KERNEL)) return `${KERNEL} missing`;
  if (!existsSync(BUSYBOX)) return `${BUSYBOX} missing (Debian busybox-static)`;
  if (spawnSync('cpio', ['--version']).status !== 0) return 'cpio missing';
  return undefined;
}

/** A newc initramfs: busybox, /dev/console, and an /init that prints the marker and reboots. */
function buildInitramfs(): Buffer {
  const dir = mkdtempSync(path.join(tmpdir(), 'xdpvm-initramfs-'));
  try {
    const root = path.join(dir, 'root');
    for (const d of ['bin', 'dev', 'proc']) mkdirSync(path.join(root, d), { recursive: true });
    copyFileSync(BUSYBOX, path.join(root, 'bin', 'busybox'));
    // /dev/console gives /init its stdio; if mknod is not allowed, /init mounts devtmpfs and
    // opens /dev/console itself.
    spawnSync('mknod', ['-m', '600', path.join(root, 'dev', 'console'), 'c', '5', '1']);
    writeFileSync(
      path.join(root, 'init'),
      [
        '#!/bin/busybox sh',
        'B=/bin/busybox',
        '$B mount -t devtmpfs dev /dev 2>/dev/null',
        '$B mount -t proc proc /proc',
        // What the kernel logged about the tables we gave it (info level: not on the console at loglevel=6).
        `$B dmesg | $B grep -E 'MultiProcessor|MPTABLE|IOAPIC\\[0\\]|BIOS-e820|Memory:|smp: Brought up' | $B sed 's/^/${DMESG} /' > /dev/console`,
        `$B echo "${MARKER} cpus=$($B grep -c ^processor /proc/cpuinfo) uptime=$($B cut -d' ' -f1 /proc/uptime)" > /dev/console`,
        // reboot=k on the command line: the i8042 reset pulse.
        '$B reboot -f',
        '',
      ].join('\n'),
    );
    chmodSync(path.join(root, 'init'), 0o755);
    const r = spawnSync('sh', ['-c', 'find . | LC_ALL=C sort | cpio -o -H newc --quiet'], { cwd: root, maxBuffer: 64 << 20 });
    if (r.status !== 0) throw new Error(`cpio failed: ${r.stderr.toString()}`);
    return r.stdout;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function bootOptions(): LinuxBootOptions {
  return { kernel: readFileSync(KERNEL), kernelName: KERNEL, initrd: buildInitramfs(), initrdName: 'test initramfs', commandLine: COMMAND_LINE };
}

/** Watches the serial output: when the banner and the marker appeared (ms after start). */
class SerialLog {
  readonly bytes: number[] = [];
  banner = -1;
  marker = -1;
  markerLine = '';
  private line: number[] = [];
  constructor(private readonly t0: number) {}

  push(byte: number): void {
    this.bytes.push(byte);
    if (byte !== 10) {
      this.line.push(byte);
      return;
    }
    const text = Buffer.from(this.line).toString('latin1');
    this.line = [];
    if (this.banner < 0 && text.includes('Linux version')) this.banner = Date.now() - this.t0;
    const m = new RegExp(`${MARKER}.*`).exec(text);
    if (this.marker < 0 && m) {
      this.marker = Date.now() - this.t0;
      this.markerLine = m[0].trim();
    }
  }

  get text(): string {
    return Buffer.from(this.bytes).toString('latin1');
  }
}

const secs = (ms: number): string => (ms < 0 ? 'never' : `${(ms / 1000).toFixed(1)} s`);

function report(what: string, log: SerialLog, end: string, elapsed: number, warnings: readonly string[]): void {
  console.log(
    `# ${what}${EMULATED_CPU ? ' (emulated CPU: not timed)' : ''}: ${end} after ${secs(elapsed)}; "Linux version" at ${secs(log.banner)}, /init marker at ${secs(log.marker)}` +
      `${log.markerLine ? ` ("${log.markerLine}")` : ''}; ${log.bytes.length} serial bytes`,
  );
  for (const w of warnings.slice(0, 10)) console.log(`# ${w}`);
  // The whole console log when something is missing, the tail otherwise.
  const text = log.text.replace(/\r/g, '');
  console.log(log.marker < 0 ? `# serial output:\n${text}` : `# last serial output:\n${text.slice(-1500)}`);
}

function checkBoot(log: SerialLog, cpus: number): void {
  assert.ok(log.banner >= 0, 'the kernel printed "Linux version" on ttyS0');
  if (!EMULATED_CPU && log.marker >= 0) {
    assert.ok(log.marker <= FAST_LIMIT_MS, `with ring 0 in hardware /init runs within ${secs(FAST_LIMIT_MS)} (took ${secs(log.marker)})`);
  }
  const dmesg = log.text.split('\n').filter((l) => l.startsWith(DMESG)).join('\n');
  assert.match(dmesg, /Intel MultiProcessor Specification v1\.4/, 'the kernel found the MP table');
  assert.match(dmesg, /MPTABLE: OEM ID: XDPVM/, 'ours');
  assert.match(dmesg, new RegExp(`IOAPIC\\[0\\]: apic_id ${cpus}, version 17, address 0xfec00000`), 'the I/O APIC from the MP table');
  assert.match(dmesg, /BIOS-e820: \[mem 0x0000000000100000-0x000000000fffffff\] usable/, 'our e820 map');
  if (cpus > 1) assert.match(dmesg, new RegExp(`smp: Brought up 1 node, ${cpus} CPUs`), 'every AP came up');
  assert.ok(log.marker >= 0, `/init printed ${MARKER}`);
  assert.ok(log.markerLine.includes(`cpus=${cpus}`), `the kernel runs on ${cpus} CPU(s): ${log.markerLine}`);
}

/** Skipped on a PVM host; elsewhere a KVM test that first checks its inputs. */
function linuxBootTest(name: string, fn: () => void | Promise<void>): void {
  if (KVM_HOST === 'pvm') return skipTest(name, PVM_REASON);
  kvmTest(name, () => {
    const missing = missingInput();
    if (missing) throw new Error(missing);
    return fn();
  });
}

{
  linuxBootTest("Linux boots to /init under xdpvm's KVM (1 vCPU, the test's own run loop)", () => {
    const t0 = Date.now();
    const log = new SerialLog(t0);
    const warnings: string[] = [];
    const kvm = Kvm.open();
    const vm = kvm.createVm();
    const ram = GuestRam.allocate(MEMORY, { memfd: 'xdpvm-linux-boot-test' });
    let kicker: Worker | undefined;
    let end = '';
    try {
      vm.setTssAddr(KVM_TSS_ADDR);
      vm.setIdentityMapAddr(KVM_IDENTITY_MAP_ADDR);
      vm.createIrqchip();
      vm.createPit2();
      const slots = ramSlots(MEMORY);
      for (const s of slots) vm.setUserMemoryRegion({ slot: s.slot, guestPhysAddr: s.gpa, memory: new Uint8Array(ram.buffer, s.offset, s.size) });
      const memory = new GuestMemory(slots.map((s) => ({ gpa: s.gpa, bytes: new Uint8Array(ram.buffer, s.offset, s.size) })));
      const boot = loadLinux(memory, 1, bootOptions());
      const vcpu = vm.createVcpu(0);
      vcpu.setCpuid(kvm.supportedCpuid());
      boot.setupVcpu(vcpu, 0);

      const ports = new PortIoBus((w) => warnings.push(w));
      ports.register(COM1_BASE, 8, new Serial8250(COM1_BASE, (b) => log.push(b), (level) => vm.irqLine(COM1_IRQ, level)));
      let done = false;
      ports.register(I8042_COMMAND, 1, new I8042Reset(() => ((done = true), (end = 'i8042 reset'))));
      ports.register(DEBUG_EXIT_PORT, 1, new DebugExit((s) => ((done = true), (end = `debug exit ${s}`))));

      // A kick every second lets the loop look at the clock even if the guest never exits.
      vcpu.bindThread();
      kicker = new Worker(
        "const { workerData } = require('node:worker_threads'); const { Vcpu } = require(workerData.module); const v = Vcpu.attach(workerData.vcpu); setInterval(() => v.kick(), 1000);",
        { eval: true, workerData: { module: require.resolve('../src/kvm/vcpu'), vcpu: vcpu.handle() } },
      );
      const data = new Uint8Array(8);
      while (!done) {
        const exit = vcpu.run();
        switch (exit) {
          case ExitReason.Io: {
            const size = vcpu.ioSize;
            const out = vcpu.ioDirection === IoDirection.Out;
            let at = vcpu.ioDataOffset;
            for (let i = 0; i < vcpu.ioCount; i++, at += size) {
              const d = data.subarray(0, size);
              if (out) {
                d.set(vcpu.runBytes.subarray(at, at + size));
                ports.write(vcpu.ioPort, d);
              } else {
                ports.read(vcpu.ioPort, d);
                vcpu.runBytes.set(d, at);
              }
            }
            break;
          }
          case ExitReason.Mmio:
            if (!vcpu.mmioIsWrite) vcpu.mmioData.fill(0xff);
            warnings.push(`unclaimed MMIO ${vcpu.mmioIsWrite ? 'write' : 'read'} at 0x${vcpu.mmioAddress.toString(16)}`);
            break;
          case ExitReason.Intr:
            if (Date.now() - t0 > TIMEOUT_MS) {
              done = true;
              end = `timeout, RIP 0x${vcpu.getRegs().rip.toString(16)}`;
            }
            break;
          default: {
            done = true;
            end = `exit reason ${exit} at RIP 0x${vcpu.getRegs().rip.toString(16)}${exit === ExitReason.InternalError ? ` (suberror ${vcpu.internalSuberror})` : ''}`;
          }
        }
      }
      vcpu.unbindThread();
      vcpu.close();
    } finally {
      void kicker?.terminate();
      vm.close();
      ram.release();
      kvm.close();
    }
    report('own run loop, 1 vCPU', log, end, Date.now() - t0, warnings);
    checkBoot(log, 1);
    assert.is(end, 'i8042 reset', 'reboot -f reset the machine through the i8042');
  });

  const cpus = Number(MACHINE_CPUS) || 2;
  const machineName = `Linux boots to /init through the Machine (${cpus} vCPUs)`;
  if (!MACHINE_CPUS) skipTest(machineName, 'opt-in: set XDPVM_LINUX_BOOT_MACHINE_CPUS=N (one boot costs minutes in the TCG harness)');
  else {
    linuxBootTest(machineName, async () => {
      const t0 = Date.now();
      const log = new SerialLog(t0);
      const warnings: string[] = [];
      const machine = new Machine({
        memoryBytes: MEMORY,
        cpus,
        nets: [],
        load: linuxLoader(bootOptions()),
        console: (b) => log.push(b),
        warn: (w) => warnings.push(w),
      });
      // A vCPU thread that never comes back cannot be stopped; fail loudly instead of hanging.
      let lastBytes = -1;
      let lastChange = Date.now();
      const watch = setInterval(() => {
        if (log.bytes.length !== lastBytes) {
          lastBytes = log.bytes.length;
          lastChange = Date.now();
        }
        if (Date.now() - t0 > TIMEOUT_MS + 60_000 || Date.now() - lastChange > 5 * 60_000) {
          clearInterval(watch);
          report(`Machine, ${cpus} vCPUs: STALLED (no serial output for 5 min, or past the time limit)`, log, 'stall', Date.now() - t0, warnings);
          // Kick the vCPUs out of KVM_RUN (a vCPU thread blocked in the kernel keeps the process
          // from exiting), then leave; a thread that still does not come back is killed with us.
          machine.stop('stalled');
          setTimeout(() => process.exit(1), 3000);
          setTimeout(() => process.kill(process.pid, 'SIGKILL'), 15_000).unref();
        }
      }, 10_000);
      const timer = setTimeout(() => machine.stop(`time limit ${secs(TIMEOUT_MS)}`), TIMEOUT_MS);
      try {
        const result = await machine.run();
        report(`Machine, ${cpus} vCPUs`, log, `${result.reason} (${result.detail})`, Date.now() - t0, warnings);
        checkBoot(log, cpus);
        assert.is(result.reason, 'reset', 'reboot -f reset the machine through the i8042');
      } finally {
        clearTimeout(timer);
        clearInterval(watch);
        await machine.close();
      }
    });
  }
}

test.run();
