// Port writes KVM logs instead of exiting (KVM_REGISTER_COALESCED_MMIO with
// pio, KVM_CAP_COALESCED_PIO), read back from the ring page of the kvm_run
// mapping (linux/kvm.h struct kvm_coalesced_mmio_ring). Applying the logged
// writes before handling any exit keeps every access in order: what a zone
// holds must be writes whose effect nothing observes until a later access
// that still exits. The VMM registers
// - the PCI configuration address register, 0xCF8, as QEMU's PCI host
//   bridges do: writing it only latches an address, read through 0xCFC (or a
//   read of 0xCF8), which still exit;
// - COM1's transmit register while the guest has the THR-empty interrupt off
//   (and no loopback): a byte written is then only output, and the guest's
//   reads of the UART still exit. Output is applied at the next exit, or by the
//   Machine's periodic flush.
// Together that is most of the PMD guest's boot exits (each a round trip
// between its vCPU thread and the platform thread).
import { Cap } from '../kvm/kvm';
import type { Vcpu } from '../kvm/vcpu';
import type { Vm } from '../kvm/vm';

const PAGE = 4096;
/** struct kvm_coalesced_mmio_ring: u32 first, u32 last, then the entries. */
const RING_HEADER = 8;
/** struct kvm_coalesced_mmio: u64 phys_addr, u32 len, u32 pio, u8 data[8]. */
const ENTRY = 24;
/** KVM_COALESCED_MMIO_MAX. */
const ENTRIES = Math.floor((PAGE - RING_HEADER) / ENTRY);

export class CoalescedWrites {
  private readonly words: Int32Array;
  private readonly view: DataView;
  private readonly bytes: Uint8Array;

  private readonly zones = new Set<string>();

  private constructor(
    ring: ArrayBuffer,
    offset: number,
    private readonly vm: Vm,
  ) {
    this.words = new Int32Array(ring, offset, 2);
    this.view = new DataView(ring, offset, PAGE);
    this.bytes = new Uint8Array(ring, offset, PAGE);
  }

  /**
   * Registers each [port, size) with KVM and returns the ring (seen through `vcpu`'s kvm_run mapping, which
   * every vCPU shares), or undefined when KVM cannot coalesce port writes: they then exit as before.
   */
  static register(vm: Vm, vcpu: Vcpu, zones: ReadonlyArray<readonly [port: number, size: number]>): CoalescedWrites | undefined {
    const page = vm.checkExtension(Cap.CoalescedMmio);
    if (page <= 0 || vm.checkExtension(Cap.CoalescedPio) <= 0 || vcpu.runArea.byteLength < (page + 1) * PAGE) return undefined;
    const ring = new CoalescedWrites(vcpu.runArea, page * PAGE, vm);
    for (const [port, size] of zones) ring.zone(port, size, true);
    return ring;
  }

  /** Starts (or stops) logging port writes in [port, port + size); a no-op when already so. */
  zone(port: number, size: number, on: boolean): void {
    const key = `${port}:${size}`;
    if (this.zones.has(key) === on) return;
    if (on) this.vm.registerCoalescedPio(port, size);
    else this.vm.unregisterCoalescedPio(port, size);
    if (on) this.zones.add(key);
    else this.zones.delete(key);
  }

  /** Applies every logged write, oldest first (call before handling any exit). */
  drain(write: (port: number, data: Uint8Array) => void): void {
    const w = this.words;
    let first = w[0]!;
    // KVM fills an entry, then publishes it by moving `last` (smp_wmb): read `last` first.
    const last = Atomics.load(w, 1);
    while (first !== last) {
      const at = RING_HEADER + first * ENTRY;
      const port = this.view.getUint32(at, true);
      const len = this.view.getUint32(at + 8, true);
      write(port, this.bytes.subarray(at + 16, at + 16 + Math.min(len, 8)));
      first = (first + 1) % ENTRIES;
      // The entry is consumed before its slot is handed back.
      Atomics.store(w, 0, first);
    }
  }
}
