// How long an idle I/O thread busy-polls before it sleeps, adapted to the
// traffic as QEMU's AioContext does it (iothread poll-max-ns, poll-grow,
// poll-shrink): after each idle spell, compare how long the thread waited
// for its next event with how long it was willing to poll. An event that
// came within the poll bound needs no change; one that came a little after
// it (still within the maximum) means polling longer would have caught it
// without a sleep and a wake-up, so the bound grows; one that came later
// than the maximum means the poll was wasted CPU, so the bound shrinks.

/** First bound when growing from 0 (QEMU starts at 4 µs too). */
const INITIAL_US = 4;

export class AdaptivePoll {
  /** The current bound, µs (0: sleep at once). */
  us = 0;

  /**
   * @param maxUs the bound never grows past this (0: never poll)
   * @param grow factor to grow by (0: 2, QEMU's default)
   * @param shrink divisor to shrink by (0: drop straight to 0, QEMU's default)
   */
  constructor(
    readonly maxUs: number,
    private readonly grow: number = 0,
    private readonly shrink: number = 0,
  ) {
    if (!(maxUs >= 0) || !(grow >= 0) || !(shrink >= 0)) throw new RangeError('poll bounds must be >= 0');
  }

  /** An idle spell ended with an event `waitedUs` after it began (polling and sleeping together). */
  idleEnded(waitedUs: number): void {
    if (waitedUs <= this.us) return;
    if (waitedUs > this.maxUs) {
      this.us = this.shrink > 1 ? Math.floor(this.us / this.shrink) : 0;
      return;
    }
    if (this.us >= this.maxUs) return;
    const next = this.us === 0 ? INITIAL_US : this.us * (this.grow > 1 ? this.grow : 2);
    this.us = next < this.maxUs ? next : this.maxUs;
  }
}
