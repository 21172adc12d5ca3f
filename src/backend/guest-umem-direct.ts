// What the virtio-net device sees of a backend queue whose UMEM is guest RAM
// itself (guest-umem=on): frames go to the kernel as guest addresses, no copy.
// The device decides which chains qualify (one contiguous frame, no offload to
// finish); the backend checks every address against what it registered and
// keeps the chains the kernel holds until it hands them back. NetBackendQueue
// stays the fallback for everything else (bounce frames, copied).
import type { GuestMemory } from '../memory/guest-memory';
import type { InFlightTable } from './af-xdp/in-flight-table';

/** txPost / rxPost: the chain is the kernel's now (its used entry waits for the kernel). */
export const DIRECT_POSTED = 1;
/** txPost / rxPost: not for this path (outside registered memory, too long, crosses what the device can DMA): copy it. */
export const DIRECT_REFUSED = 0;

export interface GuestUmemDirect {
  /** Largest frame the kernel may write into a guest receive buffer (the buffer needs the header on top). */
  readonly rxRoom: number;
  /** Receive buffers the kernel holds, with where they are (entry indices from rxEntry). */
  readonly rxTable: InFlightTable;
  /** The registered memory (guest RAM, then VMM-only bounce frames) as bytes, for bounce copies. */
  readonly umemBytes: Uint8Array;
  /** Learns where the device's guest memory regions sit in the UMEM (set-up; regions outside it are refused). */
  attach(memory: GuestMemory): void;

  // Guest -> wire.
  /** Whether txPost would take (region, offset, len) as far as memory goes, counting nothing: for a device reading ahead. */
  txTakes(region: number, offset: number, len: number): boolean;
  /** Posts `len` bytes at (region, offset) for sending; DIRECT_POSTED, DIRECT_REFUSED or TX_BUSY. */
  txPost(region: number, offset: number, len: number, headId: number, ringSlots: number): number;
  /** Takes the kernel's completions; returns how many posted chains are done (txDoneHead/txDoneSlots 0..n-1). */
  txReclaim(): number;
  txDoneHead(k: number): number;
  txDoneSlots(k: number): number;
  /** The device pushed every chain txReclaim reported. */
  txDoneTaken(): void;
  /** Posted chains not completed yet. */
  readonly txInFlight: number;

  // Wire -> guest.
  /**
   * Gives the kernel a receive chain whose first (writable) buffer is (region, offset, len): the buffer itself
   * when it can hold header + rxRoom, else a bounce frame standing in for it. DIRECT_POSTED or DIRECT_REFUSED
   * (no room now: give the chain back).
   */
  rxPost(region: number, offset: number, len: number, headId: number, ringSlots: number): number;
  /** Publishes the posted receive buffers (and wakes the driver when it asks). */
  rxPublish(): void;
  rxPeek(max: number): number;
  /** rxTable entry of the i-th peeked frame, or -1 (an address the kernel was not given: counted, skipped). */
  rxEntry(i: number): number;
  rxLength(i: number): number;
  /** UMEM address of the i-th peeked frame's first byte (in the bounce frame, for a bounce entry). */
  rxData(i: number): number;
  /** Takes the first n peeked frames; their entries are done unless rxRepost kept them. */
  rxRelease(n: number): void;
  /** Gives entry `e` back to the kernel instead of to the guest (its frame was dropped). */
  rxRepost(e: number): void;

  /**
   * Device reset (§2.4): the guest may reuse every buffer the kernel still holds. Returns once the kernel can
   * no longer write into any of them (the socket is closed and a fresh one bound in its place).
   */
  reset(): void;
}
