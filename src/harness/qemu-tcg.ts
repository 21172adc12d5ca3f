// Test and bench harness: boots the Linux guest image (src/guest-build/linux)
// under QEMU's software CPU (TCG), for machines where KVM cannot run a Linux
// kernel (README, "KVM on these machines"). No network device unless
// `qemuArgs` adds one.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { run } from '../guest-build/linux/exec';
import { guestKernelCmdline, parseGuestConsole, type GuestParams, type GuestResult } from '../guest-build/linux/guest-console';

export interface TcgBootOptions extends GuestParams {
  kernel: string;
  initrd: string;
  /** Guest RAM in MiB (default 512). */
  memoryMb?: number;
  /** -cpu model (default "max": Debian's DPDK needs more than QEMU's default qemu64 has). */
  cpu?: string;
  /** Extra kernel parameters. */
  append?: string[];
  /** Extra QEMU arguments (devices). */
  qemuArgs?: string[];
  /** Kill QEMU after this long (default 180 s). */
  timeoutMs?: number;
  /** Called with console output as it arrives. */
  onOutput?: (chunk: string) => void;
}

export interface TcgBootResult extends GuestResult {
  /** Everything QEMU printed (serial console and its own messages). */
  console: string;
  exitCode: number | null;
  timedOut: boolean;
  seconds: number;
}

const QEMU = '/usr/bin/qemu-system-x86_64';

/** Installs Debian's qemu-system-x86 if QEMU is missing (root only). */
export async function ensureQemu(progress: (line: string) => void): Promise<void> {
  if (existsSync(QEMU)) return;
  if (process.getuid?.() !== 0) throw new Error(`${QEMU} is missing: install the Debian package qemu-system-x86 (as root)`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const t0 = Date.now();
  progress('installing qemu-system-x86 (apt-get)');
  try {
    await run('apt-get', ['install', '-y', '-q', '--no-install-recommends', 'qemu-system-x86'], { env });
  } catch {
    await run('apt-get', ['update', '-q'], { env });
    await run('apt-get', ['install', '-y', '-q', '--no-install-recommends', 'qemu-system-x86'], { env });
  }
  progress(`qemu-system-x86 installed in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

export function tcgQemuArgs(o: TcgBootOptions): string[] {
  return [
    '-accel', 'tcg',
    '-cpu', o.cpu ?? 'max',
    '-m', String(o.memoryMb ?? 512),
    '-nographic', '-no-reboot',
    '-nic', 'none',
    ...(o.qemuArgs ?? []),
    '-kernel', o.kernel,
    '-initrd', o.initrd,
    '-append', guestKernelCmdline(o, o.append),
  ];
}

export function bootTcg(o: TcgBootOptions): Promise<TcgBootResult> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(existsSync(QEMU) ? QEMU : 'qemu-system-x86_64', tcgQemuArgs(o), { stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    let timedOut = false;
    const take = (d: Buffer): void => {
      const s = d.toString('utf8');
      text += s;
      o.onOutput?.(s);
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, o.timeoutMs ?? 180_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ ...parseGuestConsole(text), console: text, exitCode: code, timedOut, seconds: (Date.now() - t0) / 1000 });
    });
  });
}
