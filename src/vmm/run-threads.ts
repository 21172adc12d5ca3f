// The threads `xdpvm run` will need, started by the CLI before it loads the
// VMM (host/prestart-threads.ts): one per vCPU and one per I/O thread. The
// counts are read from the command line as run-options reads them; a count
// this gets wrong only costs an idle thread or a later start.
// Imports only what the CLI has loaded anyway.
import { prestartThreads } from '../host/prestart-threads';
import { IO_THREAD_MODULE } from '../io/io-thread-protocol';
import { VCPU_WORKER } from './vcpu/vcpu-thread';

const count = (v: string | undefined, re: RegExp): number => {
  const m = v === undefined ? null : re.exec(v);
  const n = m ? Number(m[1]) : 1;
  return n >= 1 && n <= 64 ? n : 1;
};

/**
 * vCPUs, queue pairs and I/O threads `xdpvm run ARGV` asks for (unreadable values count as 1:
 * parseRunOptions refuses them). A device's pairs each have a thread unless its iothread-vq-mapping= shares them.
 */
export function runThreadCounts(argv: readonly string[]): { vcpus: number; pairs: number; ioThreads: number } {
  let vcpus = 1;
  let pairs = 0;
  let shared = 0;
  for (let i = 0; i < argv.length - 1; i++) {
    const v = argv[i + 1]!;
    if (argv[i] === '-smp') vcpus = count(v.split(',')[0], /^(?:cpus=)?(\d+)$/);
    else if (argv[i] === '-netdev') pairs += count(v, /(?:^|,)queues=(\d+)(?:,|$)/);
    else if (argv[i] === '-device') {
      const m = /(?:^|,)iothread-vq-mapping=([\d:]+)(?:,|$)/.exec(v);
      if (!m) continue;
      const threads = m[1]!.split(':').map(Number);
      shared += threads.length - (Math.max(...threads) + 1);
    }
  }
  return { vcpus, pairs, ioThreads: Math.max(0, pairs - shared) };
}

export function prestartRunThreads(argv: readonly string[]): void {
  const { vcpus, ioThreads } = runThreadCounts(argv);
  prestartThreads(VCPU_WORKER, vcpus);
  prestartThreads(IO_THREAD_MODULE, ioThreads);
}
