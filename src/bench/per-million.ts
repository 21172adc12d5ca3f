// Events per million frames moved: what the data path paid per frame beyond
// the copies (guest kicks, interrupts, worker sleeps and wake-ups, syscalls,
// Fill-ring refills). bench device and bench pmd report the same fields.
import type { PairCounters } from '../io/pair-counters';
import type { XskStatistics } from '../native/xsk';

export interface PerMillion {
  /** Driver notify writes (guest kicks: ioeventfd / eventfd writes). */
  kicks: number;
  /** Used-buffer notifications the device sent (irqfd / call eventfd writes). */
  interrupts: number;
  /** epoll_wait calls: the worker armed notifications and slept (its only poll call). */
  polls: number;
  /** Sleeps that ended on an event (kick, frame, stop) rather than the timeout. */
  wakeups: number;
  /** Sleeps that ran to their timeout (nothing woke the worker). */
  timeouts: number;
  /** sendto calls (Tx kicks). */
  sendto: number;
  /** recvfrom calls (Fill-ring wake-ups: the kernel had run out of buffers). */
  recvfrom: number;
  /** Fill-ring refills that handed the kernel frames. */
  fillRefills: number;
  /** Service rounds of the worker (one TX and one RX pass each). */
  rounds: number;
  /** Frames the kernel dropped because the Fill ring was empty (the worker did not give frames back in time). */
  dropFillEmpty: number;
  /** Frames the kernel dropped because the Rx ring was full (the worker did not take them in time). */
  dropRxFull: number;
}

/** `frames` moved with `kicks` driver notifies, the worker's counters `c` and the socket's kernel drops over the same window. */
export function perMillion(frames: number, kicks: number, c: PairCounters, kernel?: XskStatistics): PerMillion {
  const f = frames > 0 ? 1e6 / frames : 0;
  return {
    kicks: kicks * f,
    interrupts: c.device.interrupts * f,
    polls: c.worker.sleeps * f,
    wakeups: c.worker.wakeups * f,
    timeouts: (c.worker.sleeps - c.worker.wakeups) * f,
    sendto: c.backend.txKicks * f,
    recvfrom: c.backend.rxKicks * f,
    fillRefills: c.backend.fillRefills * f,
    rounds: c.worker.rounds * f,
    dropFillEmpty: (kernel?.rxFillRingEmpty ?? 0) * f,
    dropRxFull: (kernel?.rxRingFull ?? 0) * f,
  };
}
