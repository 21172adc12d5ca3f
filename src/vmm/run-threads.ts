// The threads `xdpvm run` will need, started by the CLI before it loads the
// VMM (host/prestart-threads.ts): one per vCPU and one I/O worker per queue
// pair. The counts are read from the command line as run-options reads them;
// a count this gets wrong only costs an idle thread or a later start.
// Imports only what the CLI has loaded anyway.
import { prestartThreads } from '../host/prestart-threads';
import { QUEUE_PAIR_WORKER } from '../io/queue-pair-thread';
import { VCPU_WORKER } from './vcpu/vcpu-thread';

const count = (v: string | undefined, re: RegExp): number => {
  const m = v === undefined ? null : re.exec(v);
  const n = m ? Number(m[1]) : 1;
  return n >= 1 && n <= 64 ? n : 1;
};

/** vCPUs and queue pairs `xdpvm run ARGV` asks for (unreadable values count as 1: parseRunOptions refuses them). */
export function runThreadCounts(argv: readonly string[]): { vcpus: number; pairs: number } {
  let vcpus = 1;
  let pairs = 0;
  for (let i = 0; i < argv.length - 1; i++) {
    if (argv[i] === '-smp') vcpus = count(argv[i + 1]!.split(',')[0], /^(?:cpus=)?(\d+)$/);
    else if (argv[i] === '-netdev') pairs += count(argv[i + 1], /(?:^|,)queues=(\d+)(?:,|$)/);
  }
  return { vcpus, pairs };
}

export function prestartRunThreads(argv: readonly string[]): void {
  const { vcpus, pairs } = runThreadCounts(argv);
  prestartThreads(VCPU_WORKER, vcpus);
  prestartThreads(QUEUE_PAIR_WORKER, pairs);
}
