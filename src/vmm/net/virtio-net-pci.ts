// A virtio-net PCI device of the VMM, wired for I/O workers: its AF_XDP
// backend, one worker per queue pair, KVM ioeventfds on the queues' notify
// addresses (a guest kick wakes the worker without a VM exit) and KVM irqfds
// that follow the MSI-X table (a worker's used-buffer signal interrupts the
// guest without touching this thread). While a vector is masked its irqfd
// is detached; signals that arrive meanwhile are replayed on unmask
// (pending bit semantics, PCI 3.0 §6.8.2.9). With MSI-X off the call
// eventfds go to the call relay instead, which sets the ISR and raises INTx
// from this thread (§4.1.4.5).
//
// The I/O threads live as long as the device (one per pair by default, or
// as iothread-vq-mapping= maps them), servicing a session per DRIVER_OK (or
// VQ_PAIRS_SET enabling the pair), so a guest that resets the device or
// changes its pairs never primes a socket's Fill ring twice.
import { AfXdpBackend } from '../../backend/af-xdp/af-xdp-backend';
import type { AfXdpOptions } from '../../backend/af-xdp/af-xdp-options';
import type { GuestUmemArea } from '../../backend/af-xdp/guest-umem';
import type { DeviceVm } from '../device-vm';
import type { GuestMemory } from '../../memory/guest-memory';
import type { XskStatistics } from '../../native/xsk';
import type { PciBus } from '../../pci/pci-bus';
import { WorkerQueuePairRunner } from '../../io/worker-queue-pair-runner';
import type { SharedRegion } from '../../io/io-thread-protocol';
import type { PairCounters } from '../../io/pair-counters';
import { VirtioNetDevice } from '../../virtio/net/virtio-net-device';
import { VirtioPciDevice } from '../../virtio/pci/virtio-pci-device';
import type { InterruptRouting } from '../interrupt-routing';
import { CallRelay } from './call-relay';
import { sys } from '../../native/sys';
import { NetMtu } from 'virtio-spec-types';

const NO_VECTOR = 0xffff;

/** The MTU a device offers by default: the interface's where it is one the device may offer (§5.1.4.1), else 1500. */
export function deviceMtu(ifMtu: number): number {
  return ifMtu >= NetMtu.MIN && ifMtu <= NetMtu.MAX ? ifMtu : NetMtu.ETHERNET;
}

export interface VirtioNetPciOptions {
  id: string;
  backend: AfXdpOptions;
  mac: Uint8Array;
  /** host_mtu=: the MTU the device offers; absent: the interface's (1500 if the backend cannot tell). */
  hostMtu?: number;
  /** rx_queue_size= / tx_queue_size=: the largest receive / transmit queue the device offers (default 256, as QEMU). */
  queueSizes?: { rx?: number; tx?: number };
  vm: DeviceVm;
  bus: PciBus;
  memory: GuestMemory;
  regions: SharedRegion[];
  routing: InterruptRouting;
  /** INTx line (GSI) used when the guest leaves MSI-X off. */
  intxGsi: number;
  io?: IoThreadSettings;
  /** Guest RAM the backend may register as its UMEM (guest-umem=auto|on; guest-umem-plan.ts); absent: the copy path. */
  guestRam?: GuestUmemArea;
}

/**
 * How a device's I/O threads run:
 * `-device virtio-net-pci,...,iothread-vq-mapping=,io-cpus=,poll-max-ns=,poll-grow=,poll-shrink=,coalesce-us=,io-nice=`.
 */
export interface IoThreadSettings {
  /** The I/O thread of each queue pair, by pair (missing: each pair its own thread). */
  threadOf?: readonly number[];
  /** Host CPU of each I/O thread, by thread (missing: not pinned). */
  cpus?: readonly number[];
  /** Most an idle I/O thread busy-polls, µs (WorkerRunnerOptions.pollUs); the bound adapts below it. */
  pollUs?: number;
  pollGrow?: number;
  pollShrink?: number;
  /** Coalescing wait after a round with few frames, µs (WorkerRunnerOptions.coalesceUs). */
  coalesceUs?: number;
  /** Niceness of the I/O threads. */
  nice?: number;
}

export class VirtioNetPci {
  readonly backend: AfXdpBackend;
  readonly runner: WorkerQueuePairRunner;
  readonly device: VirtioNetDevice;
  readonly pci: VirtioPciDevice;
  private readonly ioeventAt = new Map<number, number>(); // queue -> registered address
  private readonly irqfdGsi = new Map<number, number>(); // call fd -> gsi it is assigned to
  private readonly vectorGsi = new Map<number, number>();
  private readonly relay: CallRelay | undefined;

  /** The -netdev id. */
  get id(): string {
    return this.o.id;
  }

  constructor(private readonly o: VirtioNetPciOptions) {
    // The XDP program loads and links on the thread pool while the VM is set up and boots (backend.attached).
    this.backend = AfXdpBackend.open(o.backend, undefined, { attachInBackground: true, ...(o.guestRam ? { guestRam: o.guestRam } : {}) });
    try {
      this.runner = new WorkerQueuePairRunner({
        regions: o.regions,
        // Where guest RAM is the UMEM the threads service it in place, and a device reset rebinds its sockets here.
        backends: this.backend.threadSources(),
        rebind: (pair) => this.backend.rebindForThread(pair),
        // Thread start-up overlaps the VM's set-up and the guest's boot instead of following DRIVER_OK.
        prestart: true,
        ...(o.io?.threadOf ? { threadOf: o.io.threadOf } : {}),
        ...(o.io?.cpus ? { cpus: o.io.cpus } : {}),
        ...(o.io?.pollUs !== undefined ? { pollUs: o.io.pollUs } : {}),
        ...(o.io?.pollGrow !== undefined ? { pollGrow: o.io.pollGrow } : {}),
        ...(o.io?.pollShrink !== undefined ? { pollShrink: o.io.pollShrink } : {}),
        ...(o.io?.coalesceUs !== undefined ? { coalesceUs: o.io.coalesceUs } : {}),
        ...(o.io?.nice !== undefined ? { nice: o.io.nice } : {}),
      });
      this.device = new VirtioNetDevice({
        runner: this.runner, mac: o.mac, mtu: o.hostMtu ?? deviceMtu(this.backend.ifMtu),
        ...(o.queueSizes?.rx !== undefined ? { rxQueueSize: o.queueSizes.rx } : {}),
        ...(o.queueSizes?.tx !== undefined ? { txQueueSize: o.queueSizes.tx } : {}),
      });
      this.pci = new VirtioPciDevice(this.device, { memory: o.memory, msixVectors: this.device.queueCount + 1 });
      this.relay = new CallRelay((queue) => this.pci.signalQueue(queue));
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
      // MSI-X starts disabled: every queue interrupts through INTx until the driver enables it.
      this.updateIrqfds();
    } catch (e) {
      void this.relay?.close();
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

  /** Re-aims every worker's call eventfd at its queue's current MSI-X vector, or at the call relay (INTx) while MSI-X is off. */
  private updateIrqfds(): void {
    const msix = this.pci.msix;
    for (const { queue, call } of this.workerQueues()) {
      // §4.1.5.1.3 / PCI 3.0 §6.8.2.3: with MSI-X disabled the function uses INTx.
      if (!msix.enabled) this.relay!.watch(call, queue);
      else this.relay!.unwatch(call);
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
        if (sys.eventfdRead(call) > 0) msix.trigger(vector);
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
        kernel = this.backend.statistics(p);
      } catch {
        kernel = undefined;
      }
      pairs.push({ pair: p, ...s, ...(kernel ? { kernel } : {}) });
    }
    return { id: this.o.id, ifname: this.o.backend.ifname, pairs };
  }

  /** When any of this device's I/O workers first handed a frame to the kernel (CLOCK_MONOTONIC ms), or undefined. */
  firstTxAt(): number | undefined {
    let first: number | undefined;
    for (let p = 0; p < this.runner.pairs; p++) {
      const t = this.runner.firstTxAt(p);
      if (t !== undefined && (first === undefined || t < first)) first = t;
    }
    return first;
  }

  async close(): Promise<void> {
    for (const [fd, gsi] of this.irqfdGsi) this.o.vm.deassignIrqfd(fd, gsi);
    this.irqfdGsi.clear();
    this.placeIoeventfds(undefined);
    // The relay lets go of the call eventfds before the runner closes them.
    await this.relay?.close();
    await this.runner.close();
    this.backend.close();
    // A program still being attached is detached once it is: wait for that, so none outlives the device.
    await this.backend.attached.catch(() => {});
  }
}

