// The x86 machine xdpvm runs: KVM VM with in-kernel irqchip and PIT, RAM
// around the PCI hole, a PCI host bridge with virtio-net devices (AF_XDP
// backends, one I/O worker per queue pair), COM1, debug-exit and i8042
// reset, and one worker thread per vCPU. This thread owns the device model
// and answers the vCPUs' register exits; packets never pass through it.
// With the hosted accelerator (no /dev/kvm; the PMD test guest only) each
// vCPU is a process running the guest's hosted build on the same RAM, and
// its thread relays that process's accesses instead of running KVM_RUN
// (hosted/): the devices, I/O threads and everything above are the same.
import { spawn, type ChildProcess } from 'node:child_process';
import type { Worker } from 'node:worker_threads';
import type { AfXdpOptions } from '../backend/af-xdp/af-xdp-options';
import type { CpuidEntry } from '../kvm/cpuid';
import { Kvm } from '../kvm/kvm';
import { GuestRam } from '../kvm/memory';
import type { BootTimeline } from './boot-timeline';
import { detectPvm, maskCpuidForPvm, pvmFeaturesPresent, pvmWarning } from '../kvm/pvm';
import type { Vcpu } from '../kvm/vcpu';
import type { Vm } from '../kvm/vm';
import { GuestMemory } from '../memory/guest-memory';
import { PciBus } from '../pci/pci-bus';
import { DebugExit, DEBUG_EXIT_PORT } from './devices/debug-exit';
import { I8042_COMMAND, I8042Reset } from './devices/i8042-reset';
import { PortIoBus } from './devices/port-io-bus';
import { COM1_BASE, COM1_IRQ, Serial8250 } from './devices/serial-8250';
import { InterruptRouting } from './interrupt-routing';
import { ExitRouter } from './exit-router';
import { describeGuestFault, readGuestFault } from './loader/exception-stubs';
import { KVM_IDENTITY_MAP_ADDR, KVM_TSS_ADDR, PCI_MMIO32, ramSlots } from './memory-layout';
import { VirtioNetPci, type IoThreadSettings } from './net/virtio-net-pci';
import { planGuestUmem } from './guest-umem-plan';
import { ExitMailbox, serveMailbox, Slot, StopReason, type ExitKind } from './vcpu/exit-mailbox';
import { RecentExits } from './vcpu/recent-exits';
import { CoalescedWrites } from './coalesced-writes';
import { PCI_CONFIG_ADDRESS_PORT } from '../pci/config-address';
import type { VcpuCpuMessage, VcpuWorkerData } from './vcpu/vcpu-worker';
import { namedThreadCpu, type ThreadCpu } from '../host/cpu-affinity';
import { THREAD_NAME_PREFIX } from '../host/thread-names';
import { vcpuThread } from './vcpu/vcpu-thread';
import type { DeviceVm } from './device-vm';
import { HostedVm } from './hosted/hosted-vm';
import { sys } from '../native/sys';
import { setThreadNice } from '../host/cpu-affinity';

export interface NetDeviceConfig {
  id: string;
  backend: AfXdpOptions;
  mac: Uint8Array;
  /** host_mtu=: the MTU the device offers (VIRTIO_NET_F_MTU); absent: the interface's. */
  hostMtu?: number;
  /** rx_queue_size= / tx_queue_size=: the largest receive / transmit queue the device offers (default 256, as QEMU). */
  queueSizes?: { rx?: number; tx?: number };
  /** How the device's I/O threads run (default: one per queue pair, unpinned, polling up to DEFAULT_POLL_US). */
  io?: IoThreadSettings;
}

/** What a loader (Linux, bare-metal) prepares: guest memory contents and each vCPU's initial state. */
export interface BootPlan {
  setupVcpu(vcpu: Vcpu, index: number): void;
  /** Bare-metal guests: the port the VMM's exception stubs write, ending the run with the decoded fault. */
  faultPort?: number;
  /** Bare-metal guests: each vCPU's boot info address (what a hosted vCPU process starts from). */
  bootInfo?: readonly number[];
  /** Bare-metal guests: whether the VMM-built system block is still as loaded (said after a triple fault). */
  systemBlockReport?(): string;
}

/** How the vCPUs run: KVM, or (no /dev/kvm, PMD test guest only) the guest's hosted build as a process per vCPU. */
export type Accelerator = { kind: 'kvm' } | { kind: 'hosted'; /** guest-images/out/pmd-hosted */ executable: string };

export interface MachineConfig {
  memoryBytes: number;
  cpus: number;
  nets: NetDeviceConfig[];
  /** Fills guest memory; called once RAM exists. */
  load(memory: GuestMemory, cpus: number): BootPlan;
  console(byte: number): void;
  warn(line: string): void;
  /** Where the boot's phases are recorded (backends open, VM ready, first KVM_RUN, DRIVER_OK). */
  timeline?: BootTimeline;
  /** Host CPU of each vCPU's thread, by vCPU index (missing: not pinned). */
  vcpuCpus?: readonly number[];
  /** Niceness of the vCPU threads (default: inherited). */
  vcpuNice?: number;
  /** Default: KVM. */
  accel?: Accelerator;
}

export interface RunResult {
  /** How the run ended. */
  reason: 'debug-exit' | 'shutdown' | 'reset' | 'stopped' | 'error';
  /** The guest's debug-exit status, or 0. */
  status: number;
  detail: string;
}

const INTX_GSI = 10;
/** How long logged (coalesced) console output may wait for the guest's next exit. */
const CONSOLE_FLUSH_MS = 10;

export class Machine {
  readonly memory: GuestMemory;
  readonly nets: VirtioNetPci[] = [];
  private readonly kvm: Kvm | undefined;
  private readonly vm: Vm | undefined;
  private readonly hosted: { vm: HostedVm; executable: string; bootInfo: readonly number[] } | undefined;
  /** Hosted vCPU processes and the relay threads' ends of their sockets. */
  private readonly hostedVcpus: { child: ChildProcess; exited: Promise<void>; relayFd: number }[] = [];
  private readonly ram: GuestRam;
  private readonly vcpus: Vcpu[] = [];
  private readonly boxes: ExitMailbox[] = [];
  private readonly workers: Worker[] = [];
  /** CPU time of vCPU threads that have ended (each posts it as it ends). */
  private readonly endedVcpuCpu: ThreadCpu[] = [];
  /** run() handed the vCPU threads their vCPUs. */
  private started = false;
  private readonly bus: PciBus;
  private readonly ports: PortIoBus;
  private readonly exits: ExitRouter;
  private finish: ((r: RunResult) => void) | undefined;
  private faultPort: number | undefined;
  private systemBlockReport: (() => string) | undefined;
  /** Per vCPU, its last register accesses (said after a triple fault). */
  private readonly recentExits: RecentExits[] = [];
  private readonly serial: Serial8250;
  private result: RunResult | undefined;
  private coalesced: CoalescedWrites | undefined;

  constructor(private readonly config: MachineConfig) {
    // vCPU threads first (the CLI may have started them before the VMM loaded, run-threads.ts): their start-up
    // overlaps the backends' and the VM's set-up; each gets its vCPU as its first message (vcpu-worker.ts).
    for (let i = 0; i < config.cpus; i++) {
      const worker = vcpuThread();
      worker.on('error', (e) => this.end({ reason: 'error', status: 0, detail: `vCPU ${i} thread: ${e.message}` }));
      worker.on('message', (m: VcpuCpuMessage) => {
        if (m?.kind === 'vcpu-cpu') this.endedVcpuCpu[i] = { name: m.name, tid: m.tid, runNs: m.runNs, waitNs: m.waitNs };
      });
      this.workers.push(worker);
    }
    const accel = config.accel ?? { kind: 'kvm' };
    const hostedVm = accel.kind === 'hosted' ? new HostedVm() : undefined;
    const pvm = hostedVm ? undefined : detectPvm();
    const warning = pvm ? pvmWarning(pvm) : undefined;
    if (warning) config.warn(warning);
    this.kvm = hostedVm ? undefined : Kvm.open();
    try {
      if (this.kvm) {
        this.kvm.requireExtensions();
        this.vm = this.kvm.createVm();
        this.vm.setTssAddr(KVM_TSS_ADDR);
        this.vm.setIdentityMapAddr(KVM_IDENTITY_MAP_ADDR);
        this.vm.createIrqchip();
        this.vm.createPit2();
      }
      // Where the devices inject interrupts and register eventfds: the KVM VM, or the hosted accelerator's stand-in.
      const deviceVm: DeviceVm = this.vm ?? hostedVm!;
      // Bounce frames behind guest RAM for the netdevs that may register it as their UMEM (outside every KVM slot).
      const umemPlan = planGuestUmem(config.nets.map((n) => n.backend), config.memoryBytes);
      const slots = ramSlots(config.memoryBytes);
      // The hosted process maps guest RAM flat from guest-physical 0 (hosted.c): no PCI hole to skip.
      if (hostedVm && slots.length > 1) throw new Error(`-accel hosted: at most ${slots[0]!.size / 2 ** 20} MiB of guest RAM (the hosted vCPU maps it without a PCI hole)`);
      this.ram = GuestRam.allocate(config.memoryBytes + umemPlan.tailBytes, { memfd: 'xdpvm-guest-ram' });
      for (const s of slots)
        this.vm?.setUserMemoryRegion({ slot: s.slot, guestPhysAddr: s.gpa, memory: new Uint8Array(this.ram.buffer, s.offset, s.size) });
      this.memory = new GuestMemory(slots.map((s) => ({ gpa: s.gpa, bytes: new Uint8Array(this.ram.buffer, s.offset, s.size) })));
      const ramAddress = this.ram.handle().address;
      const regions = slots.map((s) => ({ gpa: s.gpa, address: ramAddress + BigInt(s.offset), length: s.size }));

      this.bus = new PciBus({ mmio32: PCI_MMIO32 });
      this.ports = new PortIoBus(config.warn);
      this.exits = new ExitRouter(this.bus, this.ports, config.warn);
      this.serial = new Serial8250(
        COM1_BASE,
        config.console,
        (level) => deviceVm.irqLine(COM1_IRQ, level),
        (on) => this.coalesced?.zone(COM1_BASE, 1, on),
      );
      this.ports.register(COM1_BASE, 8, this.serial);
      this.ports.register(DEBUG_EXIT_PORT, 1, new DebugExit((s) => this.end({ reason: 'debug-exit', status: s, detail: '' })));
      this.ports.register(I8042_COMMAND, 1, new I8042Reset(() => this.end({ reason: 'reset', status: 0, detail: 'i8042 reset' })));

      const routing = new InterruptRouting(deviceVm);
      for (const [i, n] of config.nets.entries()) {
        const guestRam = umemPlan.area(i, this.ram.buffer);
        this.nets.push(
          new VirtioNetPci({
            id: n.id, backend: n.backend, mac: n.mac, vm: deviceVm, bus: this.bus, memory: this.memory, regions, routing, intxGsi: INTX_GSI,
            ...(guestRam ? { guestRam } : {}),
            ...(n.hostMtu !== undefined ? { hostMtu: n.hostMtu } : {}),
            ...(n.queueSizes ? { queueSizes: n.queueSizes } : {}),
            ...(n.io ? { io: n.io } : {}),
          }),
        );
      }
      config.timeline?.mark('backendsOpen');
      this.nets[0]?.pci.onDriverOk(() => config.timeline?.mark('driverOk'));

      const plan = config.load(this.memory, config.cpus);
      this.faultPort = plan.faultPort;
      this.systemBlockReport = plan.systemBlockReport?.bind(plan);
      if (accel.kind === 'hosted' && hostedVm) {
        if (!plan.bootInfo) throw new Error('-accel hosted: runs only the PMD test guest (a bare-metal ELF); a Linux kernel needs KVM');
        this.hosted = { vm: hostedVm, executable: accel.executable, bootInfo: plan.bootInfo };
        config.timeline?.mark('vmReady');
        return;
      }
      const vm = this.vm!;
      const cpuid = this.cpuid(pvm?.pvm ?? false);
      for (let i = 0; i < config.cpus; i++) {
        const vcpu = vm.createVcpu(i);
        this.vcpus.push(vcpu);
        vcpu.setCpuid(withApicId(cpuid, i));
        if (i === 0 && pvm?.pvm) {
          // A PVM KVM keeps the XSAVE-managed features as the CPU has them (ring 3 runs natively): say so once.
          const kept = pvmFeaturesPresent(vcpu.getCpuid());
          if (kept.length) config.warn(`kvm_pvm kept ${kept.join(' ')} in the guest's CPUID: usable from ring 3, but ring-0 code must not use them`);
        }
        plan.setupVcpu(vcpu, i);
      }
      // CONFIG_ADDRESS writes, and COM1 output while it raises no interrupt, are logged by KVM instead of exiting.
      this.coalesced = CoalescedWrites.register(vm, this.vcpus[0]!, [[PCI_CONFIG_ADDRESS_PORT, 4], ...(this.serial.txOnlyOutput ? [[COM1_BASE, 1] as const] : [])]);
      config.timeline?.mark('vmReady');
    } catch (e) {
      for (const n of this.nets) n.backend.close();
      this.releaseSync();
      throw e;
    }
  }

  private cpuid(pvm: boolean): CpuidEntry[] {
    const supported = this.kvm!.supportedCpuid();
    return pvm ? maskCpuidForPvm(supported) : supported;
  }

  /** Runs until the guest exits, resets, shuts down, or stop() is called. */
  async run(): Promise<RunResult> {
    const done = new Promise<RunResult>((resolve) => {
      this.finish = resolve;
      // A vCPU thread that failed before the run began.
      if (this.result) resolve(this.result);
    });
    const serving: Promise<void>[] = [];
    this.started = true;
    // The XDP programs attach in the background (VirtioNetPci): a failure ends the run with its reason.
    void Promise.all(
      this.nets.map((n) =>
        n.backend.attached.catch((e: Error) => {
          this.end({ reason: 'error', status: 0, detail: `-netdev ${n.id}: ${e.message}` });
          throw e;
        }),
      ),
    ).then(
      () => this.config.timeline?.mark('xdpAttached'),
      () => {},
    );
    if (this.hosted) this.startHostedVcpus();
    for (let i = 0; i < this.config.cpus; i++) {
      const vcpu = this.vcpus[i];
      const relay = this.hostedVcpus[i];
      const box = new ExitMailbox();
      this.boxes.push(box);
      const data: VcpuWorkerData = {
        ...(vcpu ? { vcpu: vcpu.handle() } : {}),
        ...(relay ? { hosted: { fd: relay.relayFd, ioevents: this.hosted!.vm.ioevents.buffer } } : {}),
        mailbox: box.buffer,
        ...(this.faultPort !== undefined ? { faultPort: this.faultPort } : {}),
        ...(this.config.timeline ? { timeline: this.config.timeline.shared } : {}),
        ...(this.config.vcpuCpus?.[i] !== undefined ? { cpu: this.config.vcpuCpus[i] } : {}),
        ...(this.config.vcpuNice !== undefined ? { nice: this.config.vcpuNice } : {}),
      };
      // Serving begins before the thread can post an exit (serveMailbox copes either way, see there).
      const recent = new RecentExits();
      this.recentExits.push(recent);
      const onExit = (kind: ExitKind, address: number, bytes: Uint8Array): void => {
        recent.note(kind, address, bytes.length);
        this.exit(kind, address, bytes);
      };
      serving.push(serveMailbox(box, onExit, (reason, detail) => this.vcpuStopped(i, reason, detail)));
      this.workers[i]!.postMessage(data);
    }
    // Logged console output reaches the console at the guest's next exit, or at the latest here.
    const flush = this.coalesced ? setInterval(() => this.coalesced!.drain(this.coalescedWrite), CONSOLE_FLUSH_MS) : undefined;
    const result = await done;
    clearInterval(flush);
    // The workers keep it in their control blocks (nothing per packet reaches this thread).
    const firstTx = this.nets[0]?.firstTxAt();
    if (firstTx !== undefined) this.config.timeline?.markAt('firstTx', firstTx);
    this.stopVcpus();
    await Promise.all(this.workers.map((w) => new Promise<void>((r) => (w.threadId === -1 ? r() : w.once('exit', () => r())))));
    await Promise.all(serving);
    await Promise.all(this.hostedVcpus.map((h) => h.exited));
    this.coalesced?.drain(this.coalescedWrite);
    return result;
  }

  /** One vCPU exit: the writes KVM logged meanwhile come first (they happened before it). */
  private exit(kind: ExitKind, address: number, bytes: Uint8Array): void {
    this.coalesced?.drain(this.coalescedWrite);
    this.exits.access(kind, address, bytes);
  }

  private readonly coalescedWrite = (port: number, data: Uint8Array): void => this.exits.pioWrite(port, data);

  /** Bytes for the guest's COM1 receiver (the console's input). */
  consoleInput(bytes: Uint8Array): void {
    this.serial.feed(bytes);
  }

  /** Ends the run from outside (SIGINT/SIGTERM). */
  stop(why: string): void {
    this.end({ reason: 'stopped', status: 0, detail: why });
  }

  private vcpuStopped(id: number, reason: StopReason, detail: string): void {
    switch (reason) {
      case StopReason.Requested:
        return;
      case StopReason.Shutdown:
        return this.end({ reason: 'shutdown', status: 0, detail: `vCPU ${id}: ${detail}${this.shutdownContext(id)}` });
      case StopReason.SystemReset:
        return this.end({ reason: 'reset', status: 0, detail: `vCPU ${id}: ${detail}` });
      case StopReason.SystemShutdown:
        return this.end({ reason: 'shutdown', status: 0, detail: `vCPU ${id}: ${detail}` });
      case StopReason.GuestFault:
        return this.end({ reason: 'error', status: 0, detail: `vCPU ${id}: ${this.decodeFault(detail)}` });
      default:
        return this.end({ reason: 'error', status: 0, detail: `vCPU ${id}: ${detail}` });
    }
  }

  /**
   * What is left to say after a triple fault (the registers are gone on SVM, see recent-exits.ts): the vCPU's last
   * accesses and, for a bare-metal guest, whether its system block is intact (a host-side writer, or the guest).
   */
  private shutdownContext(id: number): string {
    const parts: Array<string | undefined> = [this.recentExits[id]?.describe()];
    try {
      parts.push(this.systemBlockReport?.());
    } catch (e) {
      parts.push(`the system block could not be checked (${(e as Error).message})`);
    }
    const said = parts.filter((p): p is string => p !== undefined);
    return said.length ? `; ${said.join('; ')}` : '';
  }

  /** `rsp=HEX cr2=HEX` from the vCPU thread -> the exception frame the stub left on the guest's stack. */
  private decodeFault(detail: string): string {
    const m = /^rsp=([0-9a-f]+) cr2=([0-9a-f]+)$/.exec(detail);
    if (!m) return `guest exception (${detail})`;
    const rsp = Number.parseInt(m[1]!, 16);
    const cr2 = Number.parseInt(m[2]!, 16);
    // The stub stacks live in low RAM (identity mapped): region 0 starts at guest-physical 0.
    const f = readGuestFault(this.memory.regionBytes(0), rsp, cr2);
    return f ? describeGuestFault(f) : `guest exception with its frame outside RAM (rsp 0x${m[1]})`;
  }

  private end(r: RunResult): void {
    if (this.result) return;
    this.result = r;
    this.finish?.(r);
  }

  private stopVcpus(): void {
    for (const [i, box] of this.boxes.entries()) {
      Atomics.store(box.words, Slot.Stop, 1);
      this.vcpus[i]?.kick();
    }
    // A hosted vCPU's relay is blocked reading its process: ending the process ends the read.
    this.killHostedVcpus();
  }

  private killHostedVcpus(): void {
    for (const h of this.hostedVcpus) if (h.child.exitCode === null && h.child.signalCode === null) h.child.kill('SIGKILL');
  }

  /**
   * One process per vCPU running the guest's hosted build on guest RAM's memfd (fd 3), its requests on a socket
   * (fd 4; hosted.c takes request and reply fds, here the same), pinned and niced as a vCPU thread would be.
   */
  private startHostedVcpus(): void {
    const h = this.hosted!;
    for (let i = 0; i < this.config.cpus; i++) {
      const [relayFd, childFd] = sys.socketPair();
      let child: ChildProcess;
      try {
        child = spawn(h.executable, ['4', '4', '3', String(this.config.memoryBytes), String(h.bootInfo[i]!)], {
          stdio: ['ignore', 'ignore', 'inherit', this.ram.fd, childFd],
        });
      } finally {
        sys.close(childFd);
      }
      const exited = new Promise<void>((resolve) => {
        child.once('error', (e) => {
          this.end({ reason: 'error', status: 0, detail: `hosted vCPU ${i}: cannot start '${h.executable}': ${e.message}` });
          resolve();
        });
        child.once('exit', (code, signal) => {
          // After a debug-exit the process ends itself (status 0); the run ended first.
          this.end({ reason: 'error', status: 0, detail: `hosted vCPU ${i}: the process ended (${signal ?? `status ${code}`}) before the guest exited` });
          resolve();
        });
      });
      this.hostedVcpus.push({ child, exited, relayFd });
      const cpu = this.config.vcpuCpus?.[i];
      if (cpu !== undefined && child.pid !== undefined && sys.setThreadAffinity([cpu], child.pid) !== 0)
        this.config.warn(`xdpvm: hosted vCPU ${i}: cannot pin to CPU ${cpu}; left to the scheduler`);
      if (this.config.vcpuNice !== undefined && child.pid !== undefined) setThreadNice(child.pid, this.config.vcpuNice, `hosted vCPU ${i}`);
    }
  }

  /** CPU time of the VMM's named threads (vCPUs, I/O threads) so far; a vCPU thread that ended, as it ended. */
  threadCpu(): ThreadCpu[] {
    const live = namedThreadCpu(THREAD_NAME_PREFIX);
    const ended = this.endedVcpuCpu.filter((t) => t !== undefined && !live.some((l) => l.tid === t.tid));
    return [...ended, ...live];
  }

  /** Tears everything down (workers first, then what they used). */
  async close(): Promise<void> {
    // Threads that never got a vCPU (no run) are waiting for their message: end them.
    if (!this.started) await Promise.all(this.workers.map((w) => w.terminate()));
    for (const n of this.nets) await n.close();
    this.releaseSync();
  }

  private releaseSync(): void {
    if (!this.started) for (const w of this.workers) void w.terminate();
    for (const v of this.vcpus) v.close();
    this.killHostedVcpus();
    for (const h of this.hostedVcpus) sys.close(h.relayFd);
    this.hostedVcpus.length = 0;
    this.vm?.close();
    this.ram?.release();
    this.kvm?.close();
  }
}

/** CPUID for vCPU `id`: its initial APIC id in leaf 1 EBX[31:24] and leaf 0xB EDX. */
function withApicId(entries: readonly CpuidEntry[], id: number): CpuidEntry[] {
  return entries.map((e) => {
    if (e.function === 1) return { ...e, ebx: ((e.ebx & 0x00ffffff) | (id << 24)) >>> 0 };
    if (e.function === 0xb || e.function === 0x1f) return { ...e, edx: id };
    return e;
  });
}
