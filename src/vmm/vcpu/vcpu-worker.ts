// One vCPU's thread: KVM_RUN in a loop (or, with the hosted accelerator, the
// relay of a hosted vCPU process: hosted/hosted-vcpu-loop.ts). Port I/O and
// MMIO exits go to the platform thread through the exit mailbox (the only
// per-exit traffic); everything else ends the vCPU with a reason the VMM
// reports.
// The VMM starts the thread before the VM exists, so its start-up (a Node
// isolate, these modules, the KVM addon) overlaps the backends' set-up; the
// vCPU to run arrives as the thread's first message.
import { parentPort } from 'node:worker_threads';
import { ExitReason, IoDirection, Vcpu, type VcpuHandle } from '../../kvm/vcpu';
import { markFirstKvmRun } from '../boot-timeline';
import { nameThisThread, pinThisThread, setThreadNice, thisThreadId, threadSchedNs, type ThreadCpu } from '../../host/cpu-affinity';
import { VCPU_THREAD_NAME } from '../../host/thread-names';
import { ExitKind, ExitMailbox, StopReason } from './exit-mailbox';
import { runHostedVcpu, type HostedVcpuData } from '../hosted/hosted-vcpu-loop';

export interface VcpuWorkerData {
  /** The KVM vCPU to run; absent with the hosted accelerator, which gives `hosted` instead. */
  vcpu?: VcpuHandle;
  hosted?: HostedVcpuData;
  mailbox: SharedArrayBuffer;
  /** Bare-metal guests: the port the VMM's exception stubs write (loader/exception-stubs.ts). */
  faultPort?: number;
  /** BootTimeline.shared: this thread records the first KVM_RUN. */
  timeline?: SharedArrayBuffer;
  /** Host CPU this vCPU's thread pins itself to (none: the scheduler's choice). */
  cpu?: number;
  /** Niceness of this vCPU's thread (none: inherited). */
  nice?: number;
}

function run(d: VcpuWorkerData): void {
  const box = new ExitMailbox(d.mailbox);
  if (d.hosted) {
    // The platform pins and nices the process; the relay sits on the same CPU at its own niceness, so the
    // accesses it answers are not queued behind the niced guest. The timeline's first run: relaying begins.
    if (d.cpu !== undefined) pinThisThread(d.cpu, 'hosted vCPU relay');
    if (d.timeline) markFirstKvmRun(d.timeline);
    return runHostedVcpu(box, d.hosted);
  }
  if (!d.vcpu) return box.reportStop(StopReason.RunError, 'no vCPU given');
  const vcpu = Vcpu.attach(d.vcpu);
  nameThisThread(`${VCPU_THREAD_NAME}${vcpu.id}`);
  if (d.cpu !== undefined) pinThisThread(d.cpu, `vCPU ${vcpu.id}`);
  if (d.nice !== undefined) setThreadNice(thisThreadId(), d.nice, `vCPU ${vcpu.id}`);
  vcpu.bindThread();
  if (d.timeline) markFirstKvmRun(d.timeline);
  try {
    for (;;) {
      if (box.stopRequested) return box.reportStop(StopReason.Requested, '');
      let exit: ExitReason;
      try {
        exit = vcpu.run();
      } catch (e) {
        return box.reportStop(StopReason.RunError, (e as Error).message);
      }
      switch (exit) {
        case ExitReason.Io: {
          const size = vcpu.ioSize;
          const count = vcpu.ioCount;
          const port = vcpu.ioPort;
          const out = vcpu.ioDirection === IoDirection.Out;
          if (out && port === d.faultPort) {
            // The stub's frame sits at RSP; the platform thread decodes it from guest memory.
            const rsp = vcpu.getRegs().rsp;
            const cr2 = vcpu.getSregs().cr2;
            return box.reportStop(StopReason.GuestFault, `rsp=${rsp.toString(16)} cr2=${cr2.toString(16)}`);
          }
          // String I/O (rep ins/outs) arrives as `count` elements back to back.
          let at = vcpu.ioDataOffset;
          for (let i = 0; i < count; i++, at += size) {
            if (out) box.data.set(vcpu.runBytes.subarray(at, at + size));
            box.call(out ? ExitKind.PioWrite : ExitKind.PioRead, port, size);
            if (!out) vcpu.runBytes.set(box.data.subarray(0, size), at);
          }
          break;
        }
        case ExitReason.Mmio: {
          const len = vcpu.mmioLen;
          const write = vcpu.mmioIsWrite;
          if (write) box.data.set(vcpu.mmioData.subarray(0, len));
          box.call(write ? ExitKind.MmioWrite : ExitKind.MmioRead, vcpu.mmioAddress, len);
          if (!write) vcpu.mmioData.set(box.data.subarray(0, len));
          break;
        }
        case ExitReason.Intr:
        case ExitReason.IrqWindowOpen:
          break;
        case ExitReason.Hlt:
          // With the in-kernel irqchip hlt stays in the kernel; an exit means no irqchip wakes us.
          return box.reportStop(StopReason.Shutdown, 'hlt with no interrupt source');
        case ExitReason.Shutdown:
          return box.reportStop(StopReason.Shutdown, 'triple fault (KVM_EXIT_SHUTDOWN)');
        case ExitReason.InternalError:
          return box.reportStop(StopReason.InternalError, `KVM internal error, suberror ${vcpu.internalSuberror}`);
        case ExitReason.FailEntry:
          return box.reportStop(StopReason.FailEntry, `entry failed, hardware reason 0x${vcpu.failEntryReason.toString(16)}`);
        case ExitReason.SystemEvent: {
          const t = vcpu.systemEventType;
          return box.reportStop(t === 2 ? StopReason.SystemReset : StopReason.SystemShutdown, `system event ${t}`);
        }
        default:
          return box.reportStop(StopReason.Unexpected, `unexpected exit reason ${exit}`);
      }
    }
  } finally {
    vcpu.unbindThread();
    // The thread ends with the run: its CPU time goes to the machine now, for the counters line (run-command.ts).
    const t = threadSchedNs('self');
    const cpu: VcpuCpuMessage = { kind: 'vcpu-cpu', name: `${VCPU_THREAD_NAME}${vcpu.id}`, tid: thisThreadId(), runNs: t.run, waitNs: t.wait };
    parentPort!.postMessage(cpu);
  }
}

/** What a vCPU thread posts as it ends: its CPU time over the run. */
export interface VcpuCpuMessage extends ThreadCpu {
  kind: 'vcpu-cpu';
}

parentPort!.once('message', (d: VcpuWorkerData) => run(d));
