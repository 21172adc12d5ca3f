// A veth pair in two fresh namespaces with an AF_XDP backend on each end.
import { AfXdpBackend, type AfXdpTuning } from '../../src/backend/af-xdp/af-xdp-backend';
import { parseAfXdpOptions } from '../../src/backend/af-xdp/af-xdp-options';
import { inNetns, VethPair, type VethPairOptions } from '../../src/host/netns';

/** Small UMEMs keep the tests light; the data path is the same. */
export const TEST_TUNING: AfXdpTuning = { frameSize: 4096, frameCount: 2048, ringSize: 512 };

/** A backend serviced from this thread: its queues exist (and Fill rings are primed) at once. */
export function openBackend(netns: string, spec: string, tuning = TEST_TUNING): AfXdpBackend {
  const b = openUnservicedBackend(netns, spec, tuning);
  void b.queues;
  return b;
}

/** A backend whose sockets another thread will service (nothing primed here). */
export function openUnservicedBackend(netns: string, spec: string, tuning = TEST_TUNING): AfXdpBackend {
  return inNetns(netns, () => AfXdpBackend.open(parseAfXdpOptions(spec), tuning));
}

export async function withVeth<T>(tag: string, opts: VethPairOptions, fn: (pair: VethPair) => Promise<T>): Promise<T> {
  const pair = new VethPair(tag, opts);
  try {
    return await fn(pair);
  } finally {
    pair.remove();
  }
}
