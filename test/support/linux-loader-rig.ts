// Test support for the Linux loader tests: the host's Debian kernel, guest
// memory with guard bytes on both sides (to prove nothing is written outside
// it), and little readers that decode guest bytes independently of the code
// under test (offsets straight from boot.rst / zero-page.rst).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { test } from 'uvu';
import { skipTest } from './skip';
import { GuestMemory } from '../../src/memory/guest-memory';

// The Debian kernel the test setup installs (linux-image-amd64): the newest in /boot.
const KERNEL_RELEASE = readdirSync('/boot')
  .filter((n) => n.startsWith('vmlinuz-'))
  .map((n) => n.slice('vmlinuz-'.length))
  .sort((a, b) => a.localeCompare(b, undefined, { numeric: true }))
  .pop() ?? 'missing';
export const KERNEL_PATH = `/boot/vmlinuz-${KERNEL_RELEASE}`;
export const KERNEL_CONFIG = `/boot/config-${KERNEL_RELEASE}`;
export const HAVE_KERNEL = existsSync(KERNEL_PATH);

let cached: Buffer | undefined;
export function kernelFile(): Buffer {
  cached ??= readFileSync(KERNEL_PATH);
  return cached;
}

/** A test that needs the Debian kernel file; without it, a counted skip. */
export function kernelTest(name: string, fn: () => void | Promise<void>): void {
  if (HAVE_KERNEL) test(name, fn);
  else skipTest(name, `${KERNEL_PATH} missing`);
}

export const GUARD = 64 * 1024;
const GUARD_BYTE = 0xa5;
const ZERO_CHUNK = Buffer.alloc(1 << 20);

export interface GuardedMemory {
  memory: GuestMemory;
  /** The RAM bytes (guest-physical 0 = index 0). */
  ram: Uint8Array;
  /** The guard bytes on both sides are untouched. */
  guardsIntact(): boolean;
  /** Every RAM byte is still zero. */
  untouched(): boolean;
}

/** `bytes` of RAM at guest-physical 0 (optionally plus a high region), inside a buffer with guards. */
export function guardedMemory(bytes: number, high?: { gpa: number; bytes: number }): GuardedMemory {
  const total = GUARD + bytes + GUARD + (high ? high.bytes + GUARD : 0);
  const all = new Uint8Array(new ArrayBuffer(total));
  all.fill(GUARD_BYTE, 0, GUARD);
  all.fill(GUARD_BYTE, GUARD + bytes, GUARD + bytes + GUARD);
  if (high) all.fill(GUARD_BYTE, total - GUARD, total);
  const ram = all.subarray(GUARD, GUARD + bytes);
  const regions = [{ gpa: 0, bytes: ram }];
  if (high) regions.push({ gpa: high.gpa, bytes: all.subarray(2 * GUARD + bytes, 2 * GUARD + bytes + high.bytes) });
  const guards = (): Uint8Array[] => {
    const g = [all.subarray(0, GUARD), all.subarray(GUARD + bytes, 2 * GUARD + bytes)];
    if (high) g.push(all.subarray(total - GUARD, total));
    return g;
  };
  return {
    memory: new GuestMemory(regions),
    ram,
    guardsIntact: () => guards().every((g) => g.every((b) => b === GUARD_BYTE)),
    untouched: () => {
      // memcmp against a zero chunk: a byte loop over hundreds of MiB is too slow.
      for (let at = 0; at < bytes; at += ZERO_CHUNK.length) {
        const n = Math.min(ZERO_CHUNK.length, bytes - at);
        if (!Buffer.from(ram.buffer, ram.byteOffset + at, n).equals(ZERO_CHUNK.subarray(0, n))) return false;
      }
      return true;
    },
  };
}

export const MIB = 1024 * 1024;

export function u8(ram: Uint8Array, at: number): number {
  return ram[at]!;
}
export function u16(ram: Uint8Array, at: number): number {
  return ram[at]! | (ram[at + 1]! << 8);
}
export function u32(ram: Uint8Array, at: number): number {
  return (u16(ram, at) | (u16(ram, at + 2) << 16)) >>> 0;
}
export function u64(ram: Uint8Array, at: number): number {
  return u32(ram, at) + u32(ram, at + 4) * 2 ** 32;
}
export function cstring(ram: Uint8Array, at: number, max = 1 << 16): string {
  let end = at;
  while (end < at + max && ram[end] !== 0) end++;
  return Buffer.from(ram.subarray(at, end)).toString('latin1');
}

/** A 4-level walk (SDM vol. 3A §4.5), written here so the loader's tables are checked by other code. */
export function walk(ram: Uint8Array, cr3: number, va: number): { pa: number; pageSize: number; flags: number } | undefined {
  let table = cr3 & ~0xfff;
  const shifts = [39, 30, 21, 12];
  let flags = 0;
  for (const [level, shift] of shifts.entries()) {
    const index = Math.floor(va / 2 ** shift) % 512;
    const e = u64(ram, table + index * 8);
    if ((e & 1) === 0) return undefined;
    const addr = Math.floor(e / 4096) % 2 ** 40 * 4096;
    flags = e % 4096;
    const ps = (e & 0x80) !== 0;
    if (level === 3 || (ps && level > 0)) {
      const size = 2 ** shift;
      return { pa: addr - (addr % size) + (va % size), pageSize: size, flags };
    }
    table = addr;
  }
  return undefined;
}
