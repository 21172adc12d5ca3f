// A fresh bpf filesystem for one test: its own instance (every bpffs mount is
// a new, empty superblock), mounted on a temporary directory and unmounted
// afterwards, so tests never see or leave pins in /sys/fs/bpf.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export async function withBpffs<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(path.join(tmpdir(), 'xdpvm-bpffs-'));
  try {
    execFileSync('mount', ['-t', 'bpf', 'bpf', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    rmdirSync(dir);
    throw e;
  }
  try {
    return await fn(dir);
  } finally {
    // Lazy: a child that still has it as cwd must not keep the mount alive.
    execFileSync('umount', ['-l', dir]);
    rmdirSync(dir);
  }
}
