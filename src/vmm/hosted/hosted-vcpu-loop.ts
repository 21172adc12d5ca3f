// A hosted vCPU's relay, run in the vCPU thread in place of KVM_RUN: it reads
// the hosted PMD process's requests from its socket (hosted.c: 24 bytes of
// kind, size, address, value; every request is answered with the 8 bytes a
// read returns) and turns each into what a KVM exit would be: port I/O and
// MMIO go to the platform thread through the exit mailbox, except MMIO
// writes that hit an ioeventfd, which signal it from here. A TICK (about
// every millisecond while the driver polls) only gives the relay a chance
// to see a stop request, as the periodic kick does for a KVM vCPU.
import { readSync, writeSync } from 'node:fs';
import { sys } from '../../native/sys';
import { ExitKind, type ExitMailbox, StopReason } from '../vcpu/exit-mailbox';
import { IoeventTable } from './ioevent-table';

export interface HostedVcpuData {
  /** The relay's end of the socket pair; the process has the other. */
  fd: number;
  /** IoeventTable.buffer of the machine's HostedVm. */
  ioevents: SharedArrayBuffer;
}

const REQ_OUT = 1;
const REQ_IN = 2;
const REQ_MMIO_WRITE = 3;
const REQ_MMIO_READ = 4;
const REQ_TICK = 5;
const REQUEST_BYTES = 24;

/** Relays until the process goes away or a stop is requested; reports why through the mailbox. */
export function runHostedVcpu(box: ExitMailbox, d: HostedVcpuData): void {
  const table = new IoeventTable(d.ioevents);
  const msg = new Uint8Array(REQUEST_BYTES);
  const view = new DataView(msg.buffer);
  const reply = new Uint8Array(8);
  let size = 0;
  let address = 0;
  // An access goes to the platform thread as the exit KVM would give: a write's value in, a read's value back.
  const exit = (k: ExitKind, write: boolean): void => {
    if (write) box.data.set(msg.subarray(16, 16 + size));
    box.call(k, address, size);
    if (!write) reply.set(box.data.subarray(0, size));
  };
  for (;;) {
    if (!readRequest(d.fd, msg)) {
      return box.reportStop(box.stopRequested ? StopReason.Requested : StopReason.Shutdown, 'the hosted vCPU process went away');
    }
    if (box.stopRequested) return box.reportStop(StopReason.Requested, '');
    const kind = view.getUint32(0, true);
    size = view.getUint32(4, true);
    address = view.getUint32(8, true) + view.getUint32(12, true) * 0x1_0000_0000;
    reply.fill(0);
    // The process is ours, but what it asks is the guest's: only the sizes an instruction can have.
    if (kind !== REQ_TICK && size !== 1 && size !== 2 && size !== 4 && size !== 8) {
      return box.reportStop(StopReason.Unexpected, `hosted vCPU: request of ${size} bytes`);
    }
    switch (kind) {
      case REQ_OUT:
        exit(ExitKind.PioWrite, true);
        break;
      case REQ_IN:
        exit(ExitKind.PioRead, false);
        break;
      case REQ_MMIO_WRITE: {
        const fd = table.find(address, size);
        if (fd >= 0) sys.eventfdWrite(fd, 1);
        else exit(ExitKind.MmioWrite, true);
        break;
      }
      case REQ_MMIO_READ:
        exit(ExitKind.MmioRead, false);
        break;
      case REQ_TICK:
        break;
      default:
        return box.reportStop(StopReason.Unexpected, `hosted vCPU: unknown request kind ${kind}`);
    }
    if (!writeAll(d.fd, reply)) return box.reportStop(box.stopRequested ? StopReason.Requested : StopReason.Shutdown, 'the hosted vCPU process went away');
  }
}

/** One whole request; false at end of stream or on an error (the process died or the socket was shut down). */
function readRequest(fd: number, msg: Uint8Array): boolean {
  let got = 0;
  while (got < msg.length) {
    let n: number;
    try {
      n = readSync(fd, msg, got, msg.length - got, null);
    } catch {
      return false;
    }
    if (n === 0) return false;
    got += n;
  }
  return true;
}

function writeAll(fd: number, bytes: Uint8Array): boolean {
  let put = 0;
  while (put < bytes.length) {
    try {
      put += writeSync(fd, bytes, put, bytes.length - put);
    } catch {
      return false;
    }
  }
  return true;
}
