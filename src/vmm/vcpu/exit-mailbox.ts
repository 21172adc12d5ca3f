// How a vCPU worker hands a port-I/O or MMIO exit to the platform thread,
// which owns the device model (one PCI bus, one set of devices, whatever
// the number of vCPUs). One SharedArrayBuffer per vCPU, two sequence
// numbers: the worker bumps `request` and waits on `response`; the platform
// waits (Atomics.waitAsync, no polling) on `request` and answers. Only
// register accesses travel this way; packets never do (they go through
// ioeventfd/irqfd and the I/O workers).
//
// Both waits are bounded. Node 20 can lose an Atomics.notify when the
// notifier (the platform thread) has Atomics.waitAsync waiters of its own:
// the worker then sleeps on a Response that already changed, and with an
// unbounded wait the guest would hang for good. A bounded wait turns such a
// loss into a short delay; the worker counts them (Slot.LostWakeups).
// test/vcpu-exit-mailbox-lost-wakeups.test.ts reproduces the loss.

export const enum Slot {
  Request = 0,
  Response = 1,
  Kind = 2,
  Size = 3,
  AddressLo = 4,
  AddressHi = 5,
  /** Set by the platform to make the vCPU stop at its next exit. */
  Stop = 6,
  /** Exit status when the vCPU stopped (ExitKind.Stopped). */
  Status = 7,
  /** Responses the worker found only when its bounded wait ran out (a notify was lost). */
  LostWakeups = 8,
  Words = 9,
}

/** The worker's wait for a response, in ms: how long a lost notify can stall a vCPU. */
export const RESPONSE_RECHECK_MS = 1;
/** The platform's wait for a request, in ms: how long a lost notify can stall it. */
export const REQUEST_RECHECK_MS = 50;

export const enum ExitKind {
  PioRead = 1,
  PioWrite = 2,
  MmioRead = 3,
  MmioWrite = 4,
  /** The vCPU stopped: Status holds why (StopReason), data holds details. */
  Stopped = 5,
}

export const enum StopReason {
  Requested = 0,
  Shutdown = 1,
  InternalError = 2,
  FailEntry = 3,
  SystemReset = 4,
  SystemShutdown = 5,
  Unexpected = 6,
  RunError = 7,
  /** A bare-metal guest's exception stub wrote the fault port; detail is `rsp=HEX cr2=HEX`. */
  GuestFault = 8,
}

export const MAILBOX_BYTES = Slot.Words * 4 + 64;

export class ExitMailbox {
  readonly words: Int32Array;
  /** Access data (up to 8 bytes) or, for Stopped, a short detail string's bytes. */
  readonly data: Uint8Array;

  constructor(readonly buffer: SharedArrayBuffer = new SharedArrayBuffer(MAILBOX_BYTES)) {
    this.words = new Int32Array(buffer, 0, Slot.Words);
    this.data = new Uint8Array(buffer, Slot.Words * 4, 64);
  }

  /** Worker side: posts an access and blocks until the platform has answered. */
  call(kind: ExitKind, address: number, size: number): void {
    const w = this.words;
    w[Slot.Kind] = kind;
    w[Slot.Size] = size;
    w[Slot.AddressLo] = address % 0x1_0000_0000;
    w[Slot.AddressHi] = Math.floor(address / 0x1_0000_0000);
    const seq = (w[Slot.Request]! + 1) | 0;
    Atomics.store(w, Slot.Request, seq);
    Atomics.notify(w, Slot.Request);
    for (;;) {
      const r = Atomics.load(w, Slot.Response);
      if (r === seq) return;
      if (Atomics.wait(w, Slot.Response, r, RESPONSE_RECHECK_MS) === 'timed-out' && Atomics.load(w, Slot.Response) === seq) {
        Atomics.add(w, Slot.LostWakeups, 1);
      }
    }
  }

  /** Notifications the worker never got (see the top of this file). */
  get lostWakeups(): number {
    return Atomics.load(this.words, Slot.LostWakeups);
  }

  get address(): number {
    return (this.words[Slot.AddressHi]! >>> 0) * 0x1_0000_0000 + (this.words[Slot.AddressLo]! >>> 0);
  }

  get stopRequested(): boolean {
    return Atomics.load(this.words, Slot.Stop) !== 0;
  }

  /** Worker side, last: says why the vCPU stopped (a short detail) and waits until the platform has read it. */
  reportStop(reason: StopReason, detail: string): void {
    this.data.fill(0);
    this.data.set(Buffer.from(detail).subarray(0, 63));
    this.words[Slot.Status] = reason;
    this.call(ExitKind.Stopped, 0, 0);
  }
}

/**
 * Platform side: answers one vCPU's exits until it stops. `handle` performs
 * the access (reading into / writing from `box.data`); `stopped` gets the
 * final reason and detail.
 */
export async function serveMailbox(
  box: ExitMailbox,
  handle: (kind: ExitKind, address: number, data: Uint8Array) => void,
  stopped: (reason: StopReason, detail: string) => void,
): Promise<void> {
  const w = box.words;
  // Everything past the last answer is pending, whenever this starts: a vCPU thread that already holds its
  // vCPU can post its first exit before this runs (a thread started early, a platform thread preempted under
  // load), and taking the current Request as seen would then leave that exit unanswered for good.
  let seen = Atomics.load(w, Slot.Response);
  // A request whose notify was lost is notified again (a timeout on waitAsync
  // would post one platform timer per exit instead of one per interval).
  const recheck = setInterval(() => {
    if (Atomics.load(w, Slot.Request) !== seen) Atomics.notify(w, Slot.Request);
  }, REQUEST_RECHECK_MS);
  try {
    for (;;) {
      const r = Atomics.waitAsync(w, Slot.Request, seen);
      if (r.async) await r.value;
      const seq = Atomics.load(w, Slot.Request);
      if (seq === seen) continue;
      seen = seq;
      const kind = w[Slot.Kind] as ExitKind;
      if (kind === ExitKind.Stopped) {
        const detail = Buffer.from(box.data).toString('utf8').replace(/\0.*$/s, '');
        answer(w, seq);
        stopped(w[Slot.Status] as StopReason, detail);
        return;
      }
      try {
        handle(kind, box.address, box.data.subarray(0, w[Slot.Size]!));
      } finally {
        answer(w, seq);
      }
    }
  } finally {
    clearInterval(recheck);
  }
}

function answer(w: Int32Array, seq: number): void {
  Atomics.store(w, Slot.Response, seq);
  Atomics.notify(w, Slot.Response);
}
