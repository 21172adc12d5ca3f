// A virtio-net PCI device of the VMM, wired for I/O workers: its AF_XDP
// backend, one worker per queue pair, KVM ioeventfds on the queues' notify
// addresses (a guest kick wakes the worker without a VM exit) and KVM irqfds
// that follow the MSI-X table (a worker's used-buffer signal interrupts the
// guest without touching this thread). While a vector is masked its irqfd
// is detached; signals that arrive meanwhile are replayed on unmask
// (pending bit semantics, PCI 3.0 §6.8.2.9).
import { AfXdpBackend } from '../../backend/af-xdp/af-xdp-backend';
import type { AfXdpOptions } from '../../backend/af-xdp/af-xdp-options';
import type { Vm } from '../../kvm/vm';
import type { GuestMemory } from '../../memory/guest-memory';
import { kvmNative } from '../../native/kvm';
import { xsk, type XskStatistics } from '../../native/xsk';
import type { PciBus } from '../../pci/pci-bus';
import { WorkerQueuePairRunner } from '../../io/worker-queue-pair-runner';
import type { SharedRegion } from '../../io/queue-pair-thread';
import type { PairCounters } from '../../io/pair-counters';
import { VirtioNetDevice } from '../../virtio/net/virtio-net-device';
import { VirtioPciDevice } from '../../virtio/pci/virtio-pci-device';
import type { InterruptRouting } from '../interrupt-routing';

const NO_VECTOR = 0xffff;

export interface VirtioNetPciOptions {
  id: string;
  backend: AfXdpOptions;
  mac: Uint8Array;
  vm: Vm;
  bus: PciBus;
  memory: GuestMemory;
  regions: SharedRegion[];
  routing: InterruptRouting;
  /** INTx line (GSI) used when the guest leaves MSI-X off. */
  intxGsi: number;
}

export class VirtioNetPci {
  readonly backend: AfXdpBackend;
  readonly runner: WorkerQueuePairRunner;
  readonly device: VirtioNetDevice;
  readonly pci: VirtioPciDevice;
  private readonly ioeventAt = new Map<number, number>(); // queue -> registered address
  private readonly irqfdGsi = new Map<number, number>(); // call fd -> gsi it is assigned to
  private readonly vectorGsi = new Map<number, number>();
  private closed = false;

  constructor(private readonly o: VirtioNetPciOptions) {
    this.backend = AfXdpBackend.open(o.backend);
    try {
      this.runner = new WorkerQueuePairRunner({
        regions: o.regions,
        sockets: this.backend.sockets.map((s) => s.handle()),
      });
      this.device = new VirtioNetDevice({ runner: this.runner, mac: o.mac });
      this.pci = new VirtioPciDevice(this.device, { memory: o.memory, msixVectors: this.device.queueCount + 1 });
      o.bus.add(this.pci.pci, {
        interruptLine: o.intxGsi,
        interrupts: {
          msi: (address, data) => void o.vm.signalMsi(address % 0x1_0000_0000, Math.floor(address / 0x1_0000_0000), data),
          intx: (level) => o.vm.irqLine(o.intxGsi, level),
        },
      });
      o.bus.onBarMap((e) => {
        if (e.fn === this.pci.pci && e.bar === 0) this.placeIoeventfds(e.current);
      });
      const base = o.bus.barAddress(this.pci.pci, 0);
      if (base !== undefined) this.placeIoeventfds(base);
      this.pci.msix.addListener({ controlChanged: () => this.updateIrqfds(), vectorChanged: () => this.updateIrqfds() });
      // A driver may enable MSI-X before it maps its queues to vectors (Linux does it the other way round).
      this.pci.onVectorMappingChanged(() => this.updateIrqfds());
    } catch (e) {
      this.backend.close();
      throw e;
    }
  }

  /** Virtqueues serviced by workers: the rx/tx queue of every pair (the control queue stays on this thread). */
  private workerQueues(): Array<{ queue: number; kick: number; call: number }> {
    const out: Array<{ queue: number; kick: number; call: number }> = [];
    this.runner.fds.forEach((f, p) => {
      out.push({ queue: 2 * p, kick: f.rxKick, call: f.rxCall }, { queue: 2 * p + 1, kick: f.txKick, call: f.txCall });
    });
    return out;
  }

  private placeIoeventfds(barBase: number | undefined): void {
    for (const { queue, kick } of this.workerQueues()) {
      const old = this.ioeventAt.get(queue);
      if (old !== undefined) {
        this.o.vm.deassignIoeventfd({ eventfd: kick, space: 'mmio', addr: old, len: 2 });
        this.ioeventAt.delete(queue);
      }
      if (barBase === undefined) continue;
      const addr = barBase + this.pci.notifyOffset(queue);
      this.o.vm.assignIoeventfd({ eventfd: kick, space: 'mmio', addr, len: 2 });
      this.ioeventAt.set(queue, addr);
    }
  }

  private gsiFor(vector: number): number {
    let gsi = this.vectorGsi.get(vector);
    if (gsi === undefined) {
      gsi = this.o.routing.allocate();
      this.vectorGsi.set(vector, gsi);
    }
    return gsi;
  }

  /** Re-aims every worker's call eventfd at its queue's current MSI-X vector. */
  private updateIrqfds(): void {
    const msix = this.pci.msix;
    for (const { queue, call } of this.workerQueues()) {
      const vector = this.pci.queueVector(queue);
      const msg = vector === NO_VECTOR || !msix.enabled ? undefined : msix.message(vector);
      const live = msg !== undefined && !msg.masked && !msix.functionMasked;
      const want = live ? this.gsiFor(vector) : undefined;
      if (live) this.o.routing.setMsi(want!, msg.address, msg.data);
      const cur = this.irqfdGsi.get(call);
      if (cur === want) continue;
      if (cur !== undefined) {
        this.o.vm.deassignIrqfd(call, cur);
        this.irqfdGsi.delete(call);
      }
      if (want !== undefined) {
        // Signals raised while no irqfd was attached are still counted in the eventfd: replay them.
        if (kvmNative.eventfdRead(call) > 0) msix.trigger(vector);
        this.o.vm.assignIrqfd(call, want);
        this.irqfdGsi.set(call, want);
      }
    }
  }

  /**
   * Every queue pair's counters (pair-counters.ts) as its worker last published them (also after close()),
   * with the kernel's drop counts of the pair's socket while it is open.
   */
  stats(): { id: string; ifname: string; pairs: Array<PairCounters & { pair: number; kernel?: XskStatistics }> } {
    const pairs: Array<PairCounters & { pair: number; kernel?: XskStatistics }> = [];
    for (let p = 0; p < this.runner.pairs; p++) {
      const s = this.runner.stats(p);
      if (!s) continue;
      let kernel: XskStatistics | undefined;
      try {
        kernel = this.closed ? undefined : xsk.statistics(this.backend.sockets[p]!.fd);
      } catch {
        kernel = undefined;
      }
      pairs.push({ pair: p, ...s, ...(kernel ? { kernel } : {}) });
    }
    return { id: this.o.id, ifname: this.o.backend.ifname, pairs };
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const [fd, gsi] of this.irqfdGsi) this.o.vm.deassignIrqfd(fd, gsi);
    this.irqfdGsi.clear();
    this.placeIoeventfds(undefined);
    await this.runner.close();
    this.backend.close();
  }
}

