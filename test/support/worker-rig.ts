// One end of a veth pair serviced by an I/O worker (WorkerQueuePairRunner)
// over 8 MiB of "guest" memory, the other end an AF_XDP queue the test reads
// and writes; everything closed and unmapped after.
import type { AfXdpQueue } from '../../src/backend/af-xdp/af-xdp-queue';
import { GuestBus } from '../../src/fuzz/guest-bus';
import { WorkerQueuePairRunner, type WorkerRunnerOptions } from '../../src/io/worker-queue-pair-runner';
import { GuestMemory } from '../../src/memory/guest-memory';
import { sys } from '../../src/native/sys';
import { openBackend, openUnservicedBackend, withVeth } from './veth-backends';

export const RIG_MEM = 8 << 20;

export interface WorkerRig {
  /** The peer's queue. */
  qb: AfXdpQueue;
  bytes: Uint8Array;
  memory: GuestMemory;
  guest: GuestBus;
  runner: WorkerQueuePairRunner;
}

/** How the rig's runner polls and waits (its regions and backend are the rig's). */
export type RigRunnerOptions = Omit<WorkerRunnerOptions, 'regions' | 'backends'>;

export async function withWorkerRig(tag: string, options: RigRunnerOptions, body: (rig: WorkerRig) => Promise<void>): Promise<void> {
  await withVeth(tag, {}, async (pair) => {
    const a = openUnservicedBackend(pair.a.netns, `af-xdp,id=a,ifname=${pair.a.ifname}`);
    const b = openBackend(pair.b.netns, `af-xdp,id=b,ifname=${pair.b.ifname}`);
    const ram = sys.mapAnonymous(RIG_MEM, 'thp');
    const bytes = new Uint8Array(ram);
    const runner = new WorkerQueuePairRunner({
      regions: [{ gpa: 0, address: sys.addressOf(ram), length: RIG_MEM }],
      backends: [{ kind: 'af-xdp', socket: a.sockets[0]!.handle() }],
      ...options,
    });
    try {
      const memory = new GuestMemory([{ gpa: 0, bytes }]);
      await body({ qb: b.queues[0]!, bytes, memory, guest: new GuestBus(bytes, [{ gpa: 0, offset: 0, length: RIG_MEM }]), runner });
    } finally {
      await runner.close();
      a.close();
      b.close();
      sys.unmap(ram);
    }
  });
}
