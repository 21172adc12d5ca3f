// The "device under test" seam of the virtqueue fuzz engine. The engine plays
// a hostile driver; a target plays the device: it is attached to each case's
// queue and asked to do some work between the guest's moves. Anything a
// target throws is counted as an escape. A virtio-net device joins the fuzz
// by implementing this interface (e.g. servicing its TX path over the queue).
import type { GuestMemory } from '../memory/guest-memory';
import type { Virtqueue } from '../virtio/queue/virtqueue';
import type { FuzzRng } from './fuzz-rng';

export interface FuzzTarget {
  readonly name: string;
  /** A new case starts with this queue over this memory (the queue may already be broken). */
  attach(queue: Virtqueue, memory: GuestMemory): void;
  /** One slice of device work. */
  step(rng: FuzzRng): void;
  /** Chains handed out by the queue that broke an invariant (a queue bug if non-zero). */
  readonly badChains: number;
  /** Bytes the engine maps after the arena, in the same buffer, that the guest cannot address (VMM-only pages). */
  readonly memoryTail?: number;
}
