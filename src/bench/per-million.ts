// Events per million frames moved: what the data path paid per frame beyond
// the copies (guest kicks, interrupts, worker sleeps and wake-ups, syscalls,
// Fill-ring refills). bench device and bench pmd report the same fields.
import type { PairCounters } from '../io/pair-counters';

export interface PerMillion {
  /** Driver notify writes (guest kicks: ioeventfd / eventfd writes). */
  kicks: number;
  /** Used-buffer notifications the device sent (irqfd / call eventfd writes). */
  interrupts: number;
  /** epoll_wait calls: the worker armed notifications and slept (its only poll call). */
  polls: number;
  /** Sleeps that ended on an event (kick, frame, stop) rather than the timeout. */
  wakeups: number;
  /** sendto calls (Tx kicks). */
  sendto: number;
  /** recvfrom calls (Fill-ring wake-ups: the kernel had run out of buffers). */
  recvfrom: number;
  /** Fill-ring refills that handed the kernel frames. */
  fillRefills: number;
  /** Service rounds of the worker (one TX and one RX pass each). */
  rounds: number;
}

/** `frames` moved with `kicks` driver notifies and the worker's counters `c` over the same window. */
export function perMillion(frames: number, kicks: number, c: PairCounters): PerMillion {
  const f = frames > 0 ? 1e6 / frames : 0;
  return {
    kicks: kicks * f,
    interrupts: c.device.interrupts * f,
    polls: c.worker.sleeps * f,
    wakeups: c.worker.wakeups * f,
    sendto: c.backend.txKicks * f,
    recvfrom: c.backend.rxKicks * f,
    fillRefills: c.backend.fillRefills * f,
    rounds: c.worker.rounds * f,
  };
}
