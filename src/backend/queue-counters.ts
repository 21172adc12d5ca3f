// A backend queue's counters (every backend keeps the same set, so an I/O
// thread publishes any backend's through one table, src/io/pair-counters.ts):
// plain number fields (one hidden class, cheap increments). A backend without
// a notion counts 0 there (loopback has no kernel kicks or Fill ring).
export class QueueCounters {
  txPackets = 0;
  txBytes = 0;
  /** Frames larger than a backend frame, dropped (they could never be sent). */
  txDropOversize = 0;
  /** Times the device had to stop because no frame or Tx slot was free. */
  txBusy = 0;
  txKicks = 0;
  /** sendto kicks that failed with something other than a transient error. */
  txKickErrors = 0;
  txCompletions = 0;
  rxPackets = 0;
  rxBytes = 0;
  /** Fill-ring wakeups (the kernel ran out of receive buffers). */
  rxKicks = 0;
  /** Times received frames were left on the Rx ring because the consumer took fewer than offered. */
  rxDeferred = 0;
  /** Fill-ring refills that handed the kernel frames (one per Rx batch when it keeps up). */
  fillRefills = 0;
  /** Frames sent as a chain of descriptors (multi-buffer: larger than one UMEM frame). */
  txMultiBuffer = 0;
  /** Frames received in more than one descriptor (multi-buffer). */
  rxMultiBuffer = 0;

  snapshot(): Record<string, number> {
    return Object.fromEntries(Object.entries(this)) as Record<string, number>;
  }
}
