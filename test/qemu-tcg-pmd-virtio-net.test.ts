// The PMD test guest against a second, independent virtio-net device:
// QEMU's virtio-net-pci (modern only), on QEMU's software CPU (TCG). This
// runs where /dev/kvm does not (nested PVM guests), and checks the guest
// driver against the reference implementation of the device it drives.
//
// The bare-metal loader lays out RAM exactly as for KVM (page tables, GDT,
// IDT, TSS, boot info, ELF segments); the parts it wrote are handed to QEMU
// as raw blobs, and a 64 KiB stand-in BIOS (guest-images/pmd/qemu/rom.S)
// takes the CPU from the reset vector to the loader's entry state (CPL 3,
// IOPL 3, RDI = boot info). No firmware assigns BARs, so the PMD does.
// The netdev is a UDP socket sending to itself: what the guest transmits
// comes back as received frames, like the LoopbackQueue; the test can also
// inject frames by sending datagrams to it.
import * as assert from 'uvu/assert';
import { test } from 'uvu';
import { spawn, spawnSync } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ensurePmdImage } from '../src/guest-build/pmd';
import { loadBareMetal, PAGE_SIZE, type BareMetalBoot } from '../src/vmm/loader';
import { skipTest } from './support/skip';

const QEMU = '/usr/bin/qemu-system-x86_64';
const HAVE_QEMU = existsSync(QEMU);
const RAM_SIZE = 64 << 20;
/** Free PCI space on q35 with 64 MiB of RAM (MMCONFIG is at 0xB0000000). */
const MMIO = { base: 0xc000_0000, size: 0x1000_0000 };
/** The TSC rate QEMU's TCG gives the guest is not the host's; let the guest calibrate with the PIT. */
const TSC_KHZ = 0;
const MAC = '52:54:00:12:34:56';

function qemuTest(name: string, fn: () => Promise<void>): void {
  if (HAVE_QEMU) test(name, fn);
  else skipTest(name, `${QEMU} missing`);
}

/** The ROM's handoff block (qemu/rom.S): the loader's vCPU 0 state. */
function patchRom(rom: Uint8Array, boot: BareMetalBoot): Uint8Array {
  const out = rom.slice();
  const dv = new DataView(out.buffer);
  const magic = new TextDecoder().decode(out.subarray(0, 8));
  if (magic !== 'XDPVMROM') throw new Error(`pmd-qemu-rom.bin: bad handoff magic ${JSON.stringify(magic)}`);
  const v = boot.vcpus[0]!;
  const s = v.sregs;
  const u64 = (at: number, x: bigint | number): void => dv.setBigUint64(at, BigInt(x), true);
  u64(8, s.cr0);
  u64(16, s.cr3);
  u64(24, s.cr4);
  u64(32, s.efer);
  dv.setUint16(40, s.gdt.limit, true);
  u64(42, s.gdt.base);
  dv.setUint16(52, s.idt.limit, true);
  u64(54, s.idt.base);
  u64(64, v.regs.rip);
  u64(72, v.regs.rsp);
  u64(80, v.regs.rdi);
  u64(88, v.regs.rflags);
  u64(96, s.cs.selector);
  u64(104, s.ss.selector);
  u64(112, s.ds.selector);
  u64(120, s.tr.selector);
  const ex = boot.layout.exceptionStacks[0]!;
  u64(128, ex.base + ex.size);
  return out;
}

async function freeUdpPort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve));
  const port = s.address().port;
  s.close();
  return port;
}

interface QemuRun {
  status: number;
  console: string;
  result: Record<string, unknown> & { per_queue: Record<string, number>[] };
  wallMs: number;
}

interface QemuOptions {
  commandLine: string;
  /** -netdev value (default: a UDP socket sending to itself). */
  netdev?: string;
  /** Run QEMU in this network namespace. */
  netns?: string;
  /** virtio-net-pci properties to add (e.g. packed=on). */
  device?: string;
  /** Frames sent into the netdev once the guest says it is running. */
  inject?: Uint8Array[];
  timeoutMs?: number;
}

async function runUnderQemu(o: QemuOptions): Promise<QemuRun> {
  const elf = ensurePmdImage();
  const image = readFileSync(elf);
  const rom = readFileSync(path.join(path.dirname(elf), 'pmd-qemu-rom.bin'));
  const ram = new Uint8Array(RAM_SIZE);
  const boot = loadBareMetal({ ram, image, commandLine: o.commandLine, vcpus: 1, mmio: MMIO, tscKhz: TSC_KHZ });
  const dir = mkdtempSync(path.join(tmpdir(), 'xdpvm-pmd-qemu-'));
  let sender: Socket | undefined;
  try {
    writeFileSync(path.join(dir, 'rom.bin'), patchRom(rom, boot));
    // What the loader wrote: the system block and the image's pages (the rest of RAM is zero in QEMU too).
    const blobs: { file: string; addr: number }[] = [];
    const dump = (base: number, end: number): void => {
      const file = path.join(dir, `ram-${base.toString(16)}.bin`);
      writeFileSync(file, ram.subarray(base, end));
      blobs.push({ file, addr: base });
    };
    dump(boot.layout.system.base, boot.layout.system.base + boot.layout.system.size);
    for (const s of boot.segments) {
      dump(Math.floor(s.address / PAGE_SIZE) * PAGE_SIZE, Math.ceil((s.address + s.memSize) / PAGE_SIZE) * PAGE_SIZE);
    }
    const port = await freeUdpPort();
    const consoleFile = path.join(dir, 'console.txt');
    writeFileSync(consoleFile, '');
    const args = [
      '-machine', 'q35,accel=tcg', '-cpu', 'max', '-m', `${RAM_SIZE >> 20}M`, '-smp', '1',
      '-nodefaults', '-no-user-config', '-display', 'none', '-monitor', 'none', '-no-reboot',
      '-bios', path.join(dir, 'rom.bin'),
      ...blobs.flatMap((b) => ['-device', `loader,file=${b.file},addr=0x${b.addr.toString(16)},force-raw=on`]),
      // A file never pushes back: with a pipe, QEMU's 8250 drops bytes the guest writes while THR is busy.
      '-chardev', `file,id=con,path=${consoleFile}`, '-serial', 'chardev:con',
      '-device', 'isa-debug-exit,iobase=0x501,iosize=1',
      // The VMM's exception stubs write the vector to 0x502: here that ends QEMU with it as the status.
      '-device', 'isa-debug-exit,iobase=0x502,iosize=4',
      '-netdev', o.netdev ?? `socket,id=n0,udp=127.0.0.1:${port},localaddr=127.0.0.1:${port}`,
      '-device', `virtio-net-pci,netdev=n0,disable-legacy=on,disable-modern=off,mac=${MAC}${o.device ? `,${o.device}` : ''}`,
    ];
    const t0 = performance.now();
    const child = o.netns
      ? spawn('ip', ['netns', 'exec', o.netns, QEMU, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn(QEMU, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stdout.resume();
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const readConsole = (): string => readFileSync(consoleFile, 'latin1');
    const poll = o.inject
      ? setInterval(() => {
          if (!readConsole().includes('xdpvm-pmd: running')) return;
          clearInterval(poll);
          // Paced: QEMU's UDP socket has rmem_default of buffer, and TCG drains it slowly.
          const s = (sender = createSocket('udp4'));
          const frames = o.inject!.slice();
          const pace = setInterval(() => {
            for (const f of frames.splice(0, 16)) s.send(f, port, '127.0.0.1');
            if (frames.length === 0) clearInterval(pace);
          }, 2);
        }, 5)
      : undefined;
    const timeoutMs = o.timeoutMs ?? 60_000;
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    clearTimeout(timer);
    clearInterval(poll);
    const out = readConsole();
    const wallMs = performance.now() - t0;
    if (code === null) throw new Error(`qemu killed after ${timeoutMs} ms\n--- console ---\n${out}\n--- stderr ---\n${err}`);
    // isa-debug-exit: QEMU exits with (value << 1) | 1.
    if ((code & 1) !== 1) throw new Error(`qemu exited ${code} without the debug-exit port\n--- console ---\n${out}\n--- stderr ---\n${err}`);
    const line = /^XDPVM-PMD-RESULT (\{.*\})\r?$/m.exec(out);
    return {
      status: code >> 1,
      console: out,
      result: line ? JSON.parse(line[1]!) : undefined,
      wallMs,
    } as QemuRun;
  } finally {
    sender?.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

function report(name: string, r: QemuRun): void {
  const res = r.result;
  console.log(
    `# ${name}: exit ${r.status}, wall ${r.wallMs.toFixed(0)} ms, tx ${res?.tx_packets} rx ${res?.rx_packets} ` +
      `kicks tx ${res?.per_queue[0]?.tx_kicks} (suppressed ${res?.per_queue[0]?.kicks_suppressed})`,
  );
}

function udpFrame(n: number, tag: number): Uint8Array {
  const f = new Uint8Array(n);
  f.set([0x52, 0x54, 0x00, 0x12, 0x34, 0x56], 0);
  f.set([0x02, 0, 0, 0, 0, 0x99], 6);
  f[12] = 0x08;
  for (let i = 14; i < n; i++) f[i] = (tag + i) & 0xff;
  return f;
}

qemuTest('QEMU TCG, split ring: txonly count=1000 frames are sent and looped back', async () => {
  const r = await runUnderQemu({ commandLine: 'mode=txonly count=1000 size=64 verbose=1' });
  report('qemu txonly split', r);
  assert.is(r.status, 0, r.console);
  assert.ok(r.result, r.console);
  assert.is(r.result.ring, 'split');
  assert.is(r.result.tx_packets, 1000);
  assert.is(r.result.tx_bytes, 64_000);
  // Looped-back frames arrive through the host's UDP stack at their own pace: count them, do not insist.
  assert.is(r.result.rx_bytes, (r.result.rx_packets as number) * 64);
  assert.ok(r.console.includes('mac 52:54:00:12:34:56'), r.console);
  assert.ok(r.console.includes('assigned BAR'), 'no firmware here: the PMD placed the BAR itself');
});

qemuTest('QEMU TCG, split ring with EVENT_IDX: kicks are suppressed when the device asks', async () => {
  const r = await runUnderQemu({ commandLine: 'mode=txonly count=2000 event_idx=1' });
  report('qemu txonly split+event_idx', r);
  assert.is(r.status, 0, r.console);
  assert.is(r.result.event_idx, true);
  assert.is(r.result.tx_packets, 2000);
});

qemuTest('QEMU TCG, packed ring: txonly count=1000', async () => {
  const r = await runUnderQemu({ commandLine: 'mode=txonly count=1000 packed=1', device: 'packed=on' });
  report('qemu txonly packed', r);
  assert.is(r.status, 0, r.console);
  assert.is(r.result.ring, 'packed');
  assert.is(r.result.tx_packets, 1000);
});

qemuTest('QEMU TCG, packed ring with EVENT_IDX: io-fwd keeps injected frames circulating', async () => {
  const frames = Array.from({ length: 32 }, (_, i) => udpFrame(100, i));
  const r = await runUnderQemu({ commandLine: 'mode=io-fwd count=2000 packed=1 event_idx=1', device: 'packed=on', inject: frames });
  report('qemu io-fwd packed+event_idx', r);
  assert.is(r.status, 0, r.console);
  assert.is(r.result.tx_packets, 2000);
  assert.is(r.result.tx_bytes, 200_000);
});

qemuTest('QEMU TCG: rxonly counts injected frames', async () => {
  const frames = Array.from({ length: 200 }, (_, i) => udpFrame(60 + (i % 4) * 200, i));
  const r = await runUnderQemu({ commandLine: 'mode=rxonly count=200', inject: frames });
  report('qemu rxonly', r);
  assert.is(r.status, 0, r.console);
  assert.is(r.result.rx_packets, 200);
  assert.is(r.result.rx_bytes, frames.reduce((a, f) => a + f.length, 0));
});

qemuTest('QEMU TCG, packed ring: rxonly counts injected frames', async () => {
  const frames = Array.from({ length: 300 }, (_, i) => udpFrame(64 + (i % 3), i));
  const r = await runUnderQemu({ commandLine: 'mode=rxonly count=300 packed=1', device: 'packed=on', inject: frames, timeoutMs: 20_000 });
  report('qemu rxonly packed', r);
  assert.is(r.status, 0, r.console);
  assert.is(r.result.rx_packets, 300);
});

qemuTest('QEMU TCG: guest exceptions go through the loader\'s IDT and TSS to the fault port', async () => {
  for (const [fault, vector] of [['pf', 14], ['gp', 13], ['ud', 6]] as const) {
    const r = await runUnderQemu({ commandLine: `fault=${fault}` });
    assert.is(r.status, vector, r.console);
    assert.ok(r.console.includes('faulting on purpose') && r.result === undefined, r.console);
  }
});

qemuTest('QEMU TCG: asking for more queue pairs than the device has ends the run with status 5', async () => {
  const r = await runUnderQemu({ commandLine: 'mode=txonly count=10 queues=2' });
  assert.is(r.status, 5, r.console);
  assert.ok(r.console.includes('queues>1 needs VIRTIO_NET_F_MQ'), r.console);
});

/** A multiqueue tap in a namespace of its own (root only): QEMU's socket netdev has one queue. */
function withTapNetns(fn: (netns: string) => Promise<void>): () => Promise<void> {
  return async () => {
    const netns = `xdpvm-pmd-${process.pid}`;
    const ip = (...a: string[]): void => {
      const r = spawnSync('ip', a, { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`ip ${a.join(' ')}: ${r.stderr}`);
    };
    ip('netns', 'add', netns);
    try {
      ip('-n', netns, 'tuntap', 'add', 'mode', 'tap', 'multi_queue', 'name', 'pmd0');
      ip('-n', netns, 'link', 'set', 'pmd0', 'up');
      await fn(netns);
    } finally {
      spawnSync('ip', ['netns', 'del', netns]);
    }
  };
}

const CAN_NETNS = process.getuid?.() === 0 && existsSync('/usr/sbin/ip');
for (const packed of [false, true]) {
  const name = `QEMU TCG, ${packed ? 'packed' : 'split'} rings: two queue pairs (MQ, VQ_PAIRS_SET on the control queue) each send their count`;
  if (!CAN_NETNS) {
    skipTest(name, 'needs root and ip for a tap in a namespace');
    continue;
  }
  qemuTest(
    name,
    withTapNetns(async (netns) => {
      const r = await runUnderQemu({
        commandLine: `mode=txonly count=500 queues=2${packed ? ' packed=1 event_idx=1' : ''}`,
        netns,
        netdev: 'tap,id=n0,ifname=pmd0,script=no,downscript=no,queues=2',
        device: `mq=on,vectors=6${packed ? ',packed=on' : ''}`,
      });
      report(`qemu txonly 2 queues ${packed ? 'packed' : 'split'}`, r);
      assert.is(r.status, 0, r.console);
      assert.ok(r.console.includes('pairs 2/2'), r.console);
      assert.is(r.result.per_queue.length, 2);
      assert.is(r.result.per_queue[0]!.tx_packets, 500);
      assert.is(r.result.per_queue[1]!.tx_packets, 500);
    }),
  );
}

if (HAVE_QEMU && spawnSync(QEMU, ['--version']).status !== 0) console.log('# qemu-system-x86_64 does not run');
test.run();
