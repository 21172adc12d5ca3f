// Guest RAM as the UMEM under `xdpvm run` (-netdev af-xdp,...,guest-umem=
// auto|on|off): which netdevs are offered the VM's RAM, and how many bytes
// of bounce frames the RAM mapping carries behind the guest's memory for
// them (each netdev its own part; KVM maps none of it, so the guest cannot
// address it). The backend makes the final call where it opens: on fails
// with an OptionError when the kernel refuses the registration, auto falls
// back to the copy path with one message (inhibit=on, multi-buffer needed,
// registration refused, RLIMIT_MEMLOCK: registering pins all guest RAM).
import type { AfXdpOptions } from '../backend/af-xdp/af-xdp-options';
import { guestUmemTailBytes, type GuestUmemArea } from '../backend/af-xdp/guest-umem';
import { DEFAULT_RING_SIZE } from '../backend/af-xdp/xsk-socket';

export interface GuestUmemPlan {
  /** Bytes to map after guest RAM for every netdev offered it. */
  readonly tailBytes: number;
  /** The area offered to netdev `i` (its own bounce frames in the tail), or undefined: guest-umem=off. */
  area(i: number, ram: ArrayBuffer): GuestUmemArea | undefined;
}

export function planGuestUmem(nets: readonly AfXdpOptions[], guestBytes: number, hugePages = false, ringSize = DEFAULT_RING_SIZE): GuestUmemPlan {
  const start: (number | undefined)[] = [];
  let tail = 0;
  for (const n of nets) {
    // Absent means off.
    if ((n.guestUmem ?? 'off') === 'off') {
      start.push(undefined);
      continue;
    }
    start.push(guestBytes + tail);
    tail += guestUmemTailBytes(n.queues, ringSize);
  }
  return {
    tailBytes: tail,
    area: (i, ram) => {
      const bounceStart = start[i];
      return bounceStart === undefined ? undefined : { buffer: ram, guestLength: guestBytes, hugePages, bounceStart };
    },
  };
}
