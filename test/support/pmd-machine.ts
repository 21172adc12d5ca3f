// The device side of a PMD test guest run, shared by the two ways this
// project runs that guest: under KVM (test/pmd-boot-loopback.test.ts) and
// as a Linux process standing in for the vCPU where /dev/kvm is missing
// (test/hosted-pmd-loopback.test.ts). A PmdMachine holds guest RAM's
// device view, the PCI bus with a virtio-net device over LoopbackQueues,
// and routes exits (port I/O, MMIO) through the VMM's own ExitRouter: the
// PciBus (0xCF8-0xCFF and BARs) first, then this rig's port devices (0x3F8
// console, 0x501 exit, 0x502 fault, the PIT). Unclaimed accesses are
// ignored silently. The test cases both runners register are at the bottom.
import * as assert from 'uvu/assert';
import { LoopbackQueue } from '../../src/backend/loopback/loopback-queue';
import { GuestMemory } from '../../src/memory/guest-memory';
import { PciBus } from '../../src/pci/pci-bus';
import { VirtioNetDevice } from '../../src/virtio/net/virtio-net-device';
import { VirtioPciDevice } from '../../src/virtio/pci/virtio-pci-device';
import { parsePmdResult, type PmdResult } from '../../src/bench/pmd-result';
import { DebugExit } from '../../src/vmm/devices/debug-exit';
import { PortIoBus, type PortIoDevice } from '../../src/vmm/devices/port-io-bus';
import { ExitRouter } from '../../src/vmm/exit-router';
import { DEBUG_EXIT_PORT, FAULT_PORT, UART_PORT } from '../../src/vmm/loader';

export const PMD_RAM_SIZE = 64 << 20;
export const PMD_MMIO = { base: 0xc000_0000, size: 0x1000_0000 };
export const PMD_MAC = Uint8Array.from([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);

export type { PmdQueueResult, PmdResult } from '../../src/bench/pmd-result';

export interface PmdRunOptions {
  commandLine: string;
  pairs?: number;
  /** Backend for each pair (default: a plain LoopbackQueue). */
  backend?: () => LoopbackQueue;
  /** Called with the backends before the first instruction (e.g. to inject frames). */
  prepare?: (backends: LoopbackQueue[]) => void;
  timeoutMs?: number;
}

export interface PmdRun {
  /** The exit port's byte; -1 when the guest faulted instead. */
  status: number;
  /** What the VMM's exception stubs reported (describeGuestFault), if the guest faulted. */
  fault: string | undefined;
  console: string;
  result: PmdResult | undefined;
  device: VirtioNetDevice;
  transport: VirtioPciDevice;
  backends: LoopbackQueue[];
  exits: { io: number; mmio: number; intr: number };
  interrupts: number;
  bootToFirstPacketMs: number | undefined;
  wallMs: number;
}

export type PmdRunner = (o: PmdRunOptions) => PmdRun;

export class PmdMachine {
  readonly backends: LoopbackQueue[];
  readonly device: VirtioNetDevice;
  readonly transport: VirtioPciDevice;
  readonly bus: PciBus;
  private readonly router: ExitRouter;
  readonly exits = { io: 0, mmio: 0, intr: 0 };
  text = '';
  status: number | undefined;
  /** Set when the VMM's exception stubs wrote the fault port: the runner decodes the frame into `fault`. */
  faulted = false;
  fault: string | undefined;
  interrupts = 0;
  private t0 = performance.now();
  /** 8254 channel 2 for the guest's TSC calibration when KVM has no in-kernel PIT (see pitOut/pitIn). */
  private readonly pit = { count: 0, bytes: 0, start: 0, port61: 0 };
  private firstPacket: number | undefined;

  constructor(
    ram: Uint8Array,
    private readonly o: PmdRunOptions,
  ) {
    this.backends = Array.from({ length: o.pairs ?? 1 }, () => o.backend?.() ?? new LoopbackQueue());
    this.device = new VirtioNetDevice({ backends: this.backends, mac: PMD_MAC });
    this.transport = new VirtioPciDevice(this.device, { memory: new GuestMemory([{ gpa: 0, bytes: ram }]) });
    this.bus = new PciBus({ mmio32: PMD_MMIO });
    this.bus.add(this.transport.pci, {
      interrupts: { msi: () => this.interrupts++, intx: (level) => void (level && this.interrupts++) },
    });
    const silent = (): void => {};
    const ports = new PortIoBus(silent);
    ports.register(UART_PORT, 8, {
      read: (port, data) => {
        data.fill(0);
        if (port === UART_PORT + 5) data[0] = 0x60; // LSR: transmitter empty
      },
      write: (port, data) => {
        if (port === UART_PORT) this.text += String.fromCharCode(data[0]!);
      },
    });
    ports.register(DEBUG_EXIT_PORT, 1, new DebugExit((s) => (this.status = s)));
    // The exception stubs write the fault port with a 32-bit OUT.
    ports.register(FAULT_PORT, 4, {
      read: (_p, data) => data.fill(0xff),
      write: (port) => void (port === FAULT_PORT && (this.faulted = true)),
    });
    const pit: PortIoDevice = {
      read: (port, data) => {
        data.fill(port === 0x61 ? 0 : 0xff);
        if (port === 0x61) data[0] = this.pitPort61();
      },
      write: (port, data) => this.pitOut(port, data[0]!),
    };
    ports.register(0x40, 4, pit);
    ports.register(0x61, 1, pit);
    this.router = new ExitRouter(this.bus, ports, silent);
    o.prepare?.(this.backends);
  }

  /** Times (boot to first packet, timeout) from now: call just before the first instruction runs. */
  restartClock(): void {
    this.t0 = performance.now();
  }

  get running(): boolean {
    return this.status === undefined && !this.faulted;
  }

  /** The runner's reading of the fault frame: ends the run. */
  setFault(description: string): void {
    this.fault = description;
    this.text += `\n[vmm] ${description}\n`;
  }

  /** A guest OUT of data.length bytes. */
  out(port: number, data: Uint8Array): void {
    this.router.pioWrite(port, data);
  }

  /** A guest IN: fills data. */
  in(port: number, data: Uint8Array): void {
    this.router.pioRead(port, data);
  }

  /**
   * Just enough of the 8254 for the PMD's calibration (main.c): channel 2
   * in mode 0 with lobyte/hibyte access, its OUT on port 0x61 bit 5, low from
   * the count being loaded until it has counted down at 1.193182 MHz.
   */
  private pitOut(port: number, value: number): void {
    const p = this.pit;
    if (port === 0x43) {
      if (value >> 6 === 2) p.bytes = 0; // channel 2: a new count follows
    } else if (port === 0x42) {
      p.count = p.bytes === 0 ? value : p.count | (value << 8);
      if (++p.bytes === 2) p.start = performance.now();
    } else if (port === 0x61) {
      p.port61 = value & 0x0f;
    }
  }

  private pitPort61(): number {
    const p = this.pit;
    const done = p.bytes === 2 && (performance.now() - p.start) * 1193.182 >= (p.count || 0x10000);
    return p.port61 | (done ? 0x20 : 0);
  }

  mmio(address: number, data: Uint8Array, write: boolean): void {
    if (write) this.router.mmioWrite(address, data);
    else this.router.mmioRead(address, data);
  }

  /** After every exit: service the device (the run loop's stand-in for I/O threads) and check the clock. */
  afterExit(): void {
    this.device.pollBackends();
    if (this.firstPacket === undefined && this.backends.some((b) => b.txFrames > 0)) this.firstPacket = performance.now() - this.t0;
    const timeoutMs = this.o.timeoutMs ?? 20_000;
    if (performance.now() - this.t0 > timeoutMs) this.fail(`guest still running after ${timeoutMs} ms`);
  }

  fail(why: string): never {
    const deviceError = this.transport.deviceErrors > 0 ? `\ndevice error (caught by the transport): ${String(this.transport.lastDeviceError)}` : '';
    throw new Error(`${why}${deviceError}\n--- guest console ---\n${this.text}`);
  }

  finish(): PmdRun {
    const wallMs = performance.now() - this.t0;
    // Anything thrown inside the device during an MMIO exit (a checking backend's assertion included)
    // was turned into DEVICE_NEEDS_RESET by the transport: surface it.
    if (this.transport.deviceErrors > 0) this.fail('device error');
    if (this.status === undefined && this.fault === undefined) this.fail('the guest did not write the exit port');
    return {
      status: this.status ?? -1,
      fault: this.fault,
      console: this.text,
      result: parsePmdResult(this.text),
      device: this.device,
      transport: this.transport,
      backends: this.backends,
      exits: this.exits,
      interrupts: this.interrupts,
      bootToFirstPacketMs: this.firstPacket,
      wallMs,
    };
  }
}

// ---------------------------------------------------------------- test cases

/**
 * A LoopbackQueue that checks every frame sent through it (the guest's and
 * injected ones) when it is flushed: the device may still be copying a
 * committed frame until then.
 */
export class CheckingLoopback extends LoopbackQueue {
  checked = 0;
  private committed: [number, number][] = [];

  constructor(private readonly check: (frame: Uint8Array) => void) {
    super();
  }

  /** Injected frames pass the same check as transmitted ones. */
  override inject(frame: Uint8Array): boolean {
    this.check(frame);
    this.checked++;
    return super.inject(frame);
  }

  override txCommit(offset: number, length: number): void {
    this.committed.push([offset, length]);
    super.txCommit(offset, length);
  }

  override txFlush(): void {
    for (const [offset, length] of this.committed) {
      this.check(this.txBuffer.subarray(offset, offset + length));
      this.checked++;
    }
    this.committed = [];
    super.txFlush();
  }
}

function ipChecksumOk(ip: Uint8Array): boolean {
  let sum = 0;
  for (let i = 0; i < 20; i += 2) sum += (ip[i]! << 8) | ip[i + 1]!;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum === 0xffff;
}

export function testFrame(dst: Uint8Array, src: Uint8Array, n: number, tag: number): Uint8Array {
  const f = new Uint8Array(n);
  f.set(dst, 0);
  f.set(src, 6);
  f[12] = 0x08;
  f[13] = 0x00;
  for (let i = 14; i < n; i++) f[i] = (tag + i) & 0xff;
  return f;
}

export function reportRun(name: string, r: PmdRun): void {
  const res = r.result;
  const pps = res && res.seconds > 0 ? Math.round(Math.max(res.tx_packets, res.rx_packets) / res.seconds) : 0;
  const guestBootMs = res && res.tsc_khz > 0 ? (res.boot_cycles / res.tsc_khz).toFixed(1) : '-';
  console.log(
    `# ${name}: exit ${r.status}, wall ${r.wallMs.toFixed(1)} ms, boot to first packet ` +
      `${r.bootToFirstPacketMs?.toFixed(1) ?? '-'} ms (guest: set-up took ${guestBootMs} ms), ` +
      `exits io ${r.exits.io} mmio ${r.exits.mmio} ticks ${r.exits.intr}, ${pps} pps over ${res?.seconds ?? '-'} s`,
  );
}

/**
 * The PMD loopback test cases, registered with `register` (uvu's test or
 * a wrapper that skips when the runner cannot run here) over `run`.
 */
export function registerPmdLoopbackTests(prefix: string, register: (name: string, fn: () => void) => void, run: PmdRunner): void {
  const MAC = PMD_MAC;

  register(`${prefix}: txonly count=1000: 1000 frames reach the backend, come back, no interrupts are raised`, () => {
    const dst = [0x02, 0, 0, 0, 0, 0x02];
    const r = run({
      commandLine: 'mode=txonly count=1000 size=64 burst=32',
      // The guest's frames: 64-byte UDP/IPv4 from the device's MAC to the default dst, valid IP checksum.
      backend: () =>
        new CheckingLoopback((f) => {
          assert.is(f.length, 64);
          assert.equal([...f.subarray(0, 6)], dst);
          assert.equal([...f.subarray(6, 12)], [...MAC]);
          assert.equal([f[12], f[13], f[14], f[23]], [0x08, 0x00, 0x45, 17]);
          assert.ok(ipChecksumOk(f.subarray(14, 34)), 'IPv4 header checksum');
        }),
    });
    reportRun(`${prefix} txonly split`, r);
    assert.is(r.status, 0, r.console);
    const res = r.result;
    assert.ok(res, `no XDPVM-PMD-RESULT line:\n${r.console}`);
    assert.is((r.backends[0] as CheckingLoopback).checked, 1000);
    assert.is(res.mode, 'txonly');
    assert.is(res.ring, 'split');
    assert.is(res.tx_packets, 1000);
    assert.is(res.tx_bytes, 64_000);
    assert.is(res.per_queue[0]!.tx_packets, 1000);
    const pair = r.device.queuePairs()[0]!;
    assert.is(pair.counters.txFrames, 1000, 'device sent what the guest counted');
    assert.is(pair.counters.txBytes, 64_000);
    assert.is(r.backends[0]!.txFrames, 1000);
    assert.ok(pair.counters.rxFrames > 0, 'looped-back frames were delivered to the guest');
    assert.ok(res.rx_packets <= pair.counters.rxFrames);
    assert.is(res.rx_bytes, res.rx_packets * 64);
    assert.is(pair.counters.interrupts, 0, 'VRING_AVAIL_F_NO_INTERRUPT honoured: no used-buffer notifications');
    assert.is(r.interrupts, 0);
    assert.is(pair.errors.total, 0);
    assert.ok(r.console.includes('mac 52:54:00:12:34:56'), r.console);
  });

  register(`${prefix}: rxonly: frames injected into the backend are received and counted`, () => {
    const peer = Uint8Array.from([0x02, 0, 0, 0, 0, 0x99]);
    const r = run({
      commandLine: 'mode=rxonly count=500',
      prepare: ([b]) => {
        for (let i = 0; i < 500; i++) assert.ok(b!.inject(testFrame(MAC, peer, 60 + (i % 3) * 100, i)));
      },
    });
    reportRun(`${prefix} rxonly split`, r);
    assert.is(r.status, 0, r.console);
    assert.is(r.result?.rx_packets, 500);
    const bytes = Array.from({ length: 500 }, (_, i) => 60 + (i % 3) * 100).reduce((a, b) => a + b, 0);
    assert.is(r.result?.rx_bytes, bytes);
    assert.is(r.result?.tx_packets, 0);
    assert.is(r.device.queuePairs()[0]!.counters.rxFrames, 500);
  });

  register(`${prefix}: io-fwd: injected frames are forwarded back with MACs swapped, over and over`, () => {
    const a = Uint8Array.from([0x02, 0, 0, 0, 0, 0xaa]);
    const b = Uint8Array.from([0x02, 0, 0, 0, 0, 0xbb]);
    const seen = { ab: 0, ba: 0 };
    const r = run({
      commandLine: 'mode=io-fwd count=3000 burst=16',
      // Every frame through the backend (injected ones a->b, forwarded ones alternating) keeps its payload.
      backend: () =>
        new CheckingLoopback((f) => {
          assert.is(f.length, 128);
          const dst = f.subarray(0, 6).join();
          const src = f.subarray(6, 12).join();
          if (dst === a.join() && src === b.join()) seen.ab++;
          else if (dst === b.join() && src === a.join()) seen.ba++;
          else assert.unreachable(`MACs ${dst} / ${src}`);
          const tag = (f[14]! - 14) & 0xff;
          for (let k = 14; k < 128; k++) assert.is(f[k], (tag + k) & 0xff);
        }),
      prepare: ([q]) => {
        for (let i = 0; i < 64; i++) q!.inject(testFrame(a, b, 128, i));
      },
    });
    reportRun(`${prefix} io-fwd split`, r);
    assert.is(r.status, 0, r.console);
    assert.is(r.result?.tx_packets, 3000);
    assert.is(r.result?.tx_bytes, 3000 * 128);
    assert.ok(r.result!.rx_packets >= 3000);
    assert.is(r.result?.per_queue[0]!.tx_dropped, 0);
    assert.is(r.device.queuePairs()[0]!.counters.txFrames, 3000);
    // 64 injected a->b, then each forward flips the MACs.
    assert.is(seen.ab + seen.ba, 3064);
    assert.ok(seen.ba >= 1500 && seen.ab >= 1500, JSON.stringify(seen));
  });

  register(`${prefix}: packed ring with EVENT_IDX: txonly count=1000`, () => {
    const r = run({ commandLine: 'mode=txonly count=1000 packed=1 event_idx=1' });
    reportRun(`${prefix} txonly packed+event_idx`, r);
    assert.is(r.status, 0, r.console);
    assert.is(r.result?.ring, 'packed');
    assert.is(r.result?.event_idx, true);
    assert.is(r.result?.tx_packets, 1000);
    assert.is(r.device.queuePairs()[0]!.counters.txFrames, 1000);
    assert.is(r.device.queuePairs()[0]!.counters.interrupts, 0, 'driver event suppression DISABLE honoured');
  });

  register(`${prefix}: two queue pairs: MQ and VQ_PAIRS_SET over the control queue; each pair sends its count`, () => {
    const r = run({ commandLine: 'mode=txonly count=1000 queues=2', pairs: 2 });
    reportRun(`${prefix} txonly 2 queues`, r);
    assert.is(r.status, 0, r.console);
    assert.is(r.device.activeQueuePairs, 2);
    assert.is(r.result?.per_queue.length, 2);
    for (let p = 0; p < 2; p++) {
      assert.is(r.result?.per_queue[p]!.tx_packets, 1000);
      assert.is(r.device.queuePairs()[p]!.counters.txFrames, 1000);
      assert.is(r.backends[p]!.txFrames, 1000);
    }
  });

  register(`${prefix}: txonly and io-fwd for 1 s: loopback rate with the vCPU in this thread (not a benchmark)`, () => {
    const tx = run({ commandLine: 'mode=txonly seconds=1 burst=32' });
    reportRun(`${prefix} txonly 1 s`, tx);
    assert.is(tx.status, 0, tx.console);
    assert.ok(tx.exits.intr > 0, 'the periodic kick reached the run loop');
    assert.ok(tx.result!.tx_packets > 0);
    assert.is(tx.result?.timed_out, false);
    const peer = Uint8Array.from([0x02, 0, 0, 0, 0, 1]);
    const fwd = run({
      commandLine: 'mode=io-fwd seconds=1 burst=32',
      prepare: ([q]) => {
        for (let i = 0; i < 512; i++) q!.inject(testFrame(MAC, peer, 64, i));
      },
    });
    reportRun(`${prefix} io-fwd 1 s`, fwd);
    assert.is(fwd.status, 0, fwd.console);
    assert.ok(fwd.result!.tx_packets > 0);
  });

  register(`${prefix}: a bad command line ends the run with status 2 and says why`, () => {
    const r = run({ commandLine: 'mode=warp' });
    assert.is(r.status, 2);
    assert.ok(r.console.includes("mode is txonly, rxonly or io-fwd, not 'warp'"), r.console);
    assert.is(r.result, undefined);
  });
}
