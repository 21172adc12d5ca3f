// The PMD test guest's driver code against xdpvm's own device model, where
// /dev/kvm is missing (nested PVM hosts): guest-images/out/pmd-hosted is the
// same driver built as a Linux process. Guest RAM is a memfd both sides map
// (the loader lays it out exactly as for KVM: boot info, command line, free
// range); each port and MMIO access the driver makes arrives here over a
// pipe, is routed like a KVM exit (test/support/pmd-machine.ts) and
// answered; a TICK request every millisecond stands in for the periodic
// kick. Same test cases as the KVM smoke test (pmd-boot-loopback).
import { test } from 'uvu';
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { GuestRam } from '../src/kvm';
import { ensurePmdImage } from '../src/guest-build/pmd';
import { hostTscKhz, loadBareMetal } from '../src/vmm/loader';
import { PMD_MMIO, PMD_RAM_SIZE, PmdMachine, registerPmdLoopbackTests, type PmdRun, type PmdRunOptions } from './support/pmd-machine';

const REQ_OUT = 1;
const REQ_IN = 2;
const REQ_MMIO_WRITE = 3;
const REQ_MMIO_READ = 4;
const REQ_TICK = 5;

function runHosted(o: PmdRunOptions): PmdRun {
  const elf = ensurePmdImage();
  const hosted = path.join(path.dirname(elf), 'pmd-hosted');
  const ram = GuestRam.allocate(PMD_RAM_SIZE, { memfd: 'xdpvm-pmd-hosted' });
  const dir = mkdtempSync(path.join(tmpdir(), 'xdpvm-pmd-hosted-'));
  let reqFd = -1;
  let repFd = -1;
  let child: ReturnType<typeof spawn> | undefined;
  try {
    const m = new PmdMachine(ram.bytes, o);
    const boot = loadBareMetal({ ram: ram.bytes, image: readFileSync(elf), commandLine: o.commandLine, vcpus: 1, mmio: PMD_MMIO, tscKhz: hostTscKhz() });
    const req = path.join(dir, 'req');
    const rep = path.join(dir, 'rep');
    for (const f of [req, rep]) if (spawnSync('mkfifo', [f]).status !== 0) throw new Error(`mkfifo ${f} failed`);
    // The shell opens the FIFOs (as fds 4 and 5) before anything can fail, so the blocking opens below
    // always meet a peer; `timeout` bounds a guest that never ends, which closes fd 4 and ends our reads.
    const limit = Math.ceil((o.timeoutMs ?? 20_000) / 1000) + 5;
    m.restartClock();
    child = spawn(
      'sh',
      ['-c', 'exec 4>"$1" 5<"$2"; shift 2; exec "$@"', 'sh', req, rep, 'timeout', '-s', 'KILL', String(limit),
        hosted, '4', '5', '3', String(PMD_RAM_SIZE), String(boot.vcpus[0]!.bootInfo)],
      { stdio: ['ignore', 'inherit', 'inherit', ram.fd] },
    );
    reqFd = openSync(req, 'r');
    repFd = openSync(rep, 'w');
    const msg = new Uint8Array(24);
    const dv = new DataView(msg.buffer);
    const reply = new Uint8Array(8);
    const rdv = new DataView(reply.buffer);
    const data = new Uint8Array(8);
    while (m.running) {
      let got = 0;
      while (got < 24) {
        const n = readSync(reqFd, msg, got, 24 - got, null);
        if (n === 0) m.fail(`pmd-hosted went away (after ${got} bytes of a request)`);
        got += n;
      }
      const kind = dv.getUint32(0, true);
      const size = dv.getUint32(4, true);
      const addr = dv.getUint32(8, true) + dv.getUint32(12, true) * 2 ** 32;
      const bytes = data.subarray(0, size);
      rdv.setBigUint64(0, 0n, true);
      switch (kind) {
        case REQ_OUT:
          m.exits.io++;
          bytes.set(msg.subarray(16, 16 + size));
          m.out(addr, bytes);
          break;
        case REQ_IN:
          m.exits.io++;
          m.in(addr, bytes);
          reply.set(bytes);
          break;
        case REQ_MMIO_WRITE:
          m.exits.mmio++;
          bytes.set(msg.subarray(16, 16 + size));
          m.mmio(addr, bytes, true);
          break;
        case REQ_MMIO_READ:
          m.exits.mmio++;
          m.mmio(addr, bytes, false);
          reply.set(bytes);
          break;
        case REQ_TICK:
          m.exits.intr++;
          break;
        default:
          m.fail(`pmd-hosted sent request kind ${kind}`);
      }
      writeSync(repFd, reply);
      m.afterExit();
    }
    return m.finish();
  } finally {
    if (reqFd >= 0) closeSync(reqFd);
    if (repFd >= 0) closeSync(repFd);
    child?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    ram.release();
  }
}

registerPmdLoopbackTests('hosted', test, runHosted);
test.run();
