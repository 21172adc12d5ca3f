// Names the VMM gives its threads (comm, at most 15 bytes): top, perf and
// /proc show which thread is which, and the counters line finds them by it.
export const THREAD_NAME_PREFIX = 'xdpvm-';
/** vCPU i's thread: `xdpvm-vcpu<i>`. */
export const VCPU_THREAD_NAME = `${THREAD_NAME_PREFIX}vcpu`;
/** A device's I/O thread t: `xdpvm-io<t>` (devices number their threads from 0 each). */
export const IO_THREAD_NAME = `${THREAD_NAME_PREFIX}io`;
