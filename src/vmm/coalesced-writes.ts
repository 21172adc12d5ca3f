// Port writes KVM logs instead of exiting (KVM_REGISTER_COALESCED_MMIO with
// pio, KVM_CAP_COALESCED_PIO), read back from the ring page of the kvm_run
// mapping (linux/kvm.h struct kvm_coalesced_mmio_ring). The VMM registers
// the PCI configuration address register, 0xCF8, as QEMU's PCI host bridges
// do: writing it only latches an address, which nothing observes until an
// access to 0xCFC (or a read of 0xCF8), and those still exit, so applying the
// logged writes before handling any exit keeps every access in order. That
// is a third of the exits of the PMD guest's boot (each a round trip between
// the vCPU and the platform thread).
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

  private constructor(ring: ArrayBuffer, offset: number) {
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
    for (const [port, size] of zones) vm.registerCoalescedPio(port, size);
    return new CoalescedWrites(vcpu.runArea, page * PAGE);
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
