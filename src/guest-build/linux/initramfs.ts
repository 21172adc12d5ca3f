// The initramfs: a layout of guest paths (files from the staging tree or from
// memory, symlinks, directories, device nodes), written as one cpio newc
// archive piped through a compressor the kernel can unpack.
import { closeSync, openSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { CpioWriter, type CpioEntry } from './cpio';
import { runPipe } from './exec';

export type Compression = 'zstd' | 'gzip';

type LayoutEntry =
  | { kind: 'file'; mode: number; host: string }
  | { kind: 'data'; mode: number; data: Uint8Array }
  | { kind: 'symlink'; target: string }
  | { kind: 'dir'; mode: number }
  | { kind: 'char'; mode: number; major: number; minor: number };

export class LayoutError extends Error {
  override name = 'LayoutError';
}

export class InitramfsLayout {
  private readonly map = new Map<string, LayoutEntry>();

  private put(p: string, e: LayoutEntry): void {
    const n = path.posix.normalize(p);
    if (!n.startsWith('/') || n === '/') throw new LayoutError(`bad initramfs path ${p}`);
    const prev = this.map.get(n);
    if (prev) {
      if (prev.kind === 'dir' && e.kind === 'dir') return;
      if (JSON.stringify(prev) === JSON.stringify(e)) return;
      throw new LayoutError(`${n} is added twice (${prev.kind}, then ${e.kind})`);
    }
    this.parents(n);
    this.map.set(n, e);
  }

  private parents(p: string): void {
    const dir = path.posix.dirname(p);
    if (dir === '/' || this.map.has(dir)) {
      const e = this.map.get(dir);
      if (e && e.kind !== 'dir' && e.kind !== 'symlink') throw new LayoutError(`${dir} is a ${e.kind}, not a directory`);
      return;
    }
    this.put(dir, { kind: 'dir', mode: 0o755 });
  }

  dir(p: string, mode = 0o755): void {
    this.put(p, { kind: 'dir', mode });
  }
  file(p: string, host: string, mode: number): void {
    this.put(p, { kind: 'file', host, mode });
  }
  data(p: string, data: string | Uint8Array, mode = 0o644): void {
    this.put(p, { kind: 'data', mode, data: typeof data === 'string' ? Buffer.from(data, 'utf8') : data });
  }
  symlink(p: string, target: string): void {
    this.put(p, { kind: 'symlink', target });
  }
  charDevice(p: string, major: number, minor: number, mode = 0o600): void {
    this.put(p, { kind: 'char', mode, major, minor });
  }

  has(p: string): boolean {
    return this.map.has(path.posix.normalize(p));
  }

  get size(): number {
    return this.map.size;
  }

  /** Entries in path order (every directory before what is in it), starting with the root directory. */
  *entries(): Generator<CpioEntry> {
    // Without it the initramfs root is world-writable, which DPDK's EAL refuses for its plugin path.
    yield { name: '/', kind: 'dir', mode: 0o755 };
    for (const p of [...this.map.keys()].sort()) {
      const e = this.map.get(p)!;
      switch (e.kind) {
        case 'file':
          yield { name: p, kind: 'file', mode: e.mode, data: readFileSync(e.host) };
          break;
        case 'data':
          yield { name: p, kind: 'file', mode: e.mode, data: e.data };
          break;
        case 'symlink':
          yield { name: p, kind: 'symlink', target: e.target };
          break;
        case 'dir':
          yield { name: p, kind: 'dir', mode: e.mode };
          break;
        case 'char':
          yield { name: p, kind: 'char', mode: e.mode, major: e.major, minor: e.minor };
          break;
      }
    }
  }
}

const COMPRESSOR: Record<Compression, [string, string[]]> = {
  // One thread, level 12: ~10% larger than -19 for a tenth of the time (1.7 s instead of 15 s for 28 MB).
  zstd: ['zstd', ['-q', '-12', '-T1', '-c']],
  gzip: ['gzip', ['-9', '-n', '-c']],
};

export interface InitramfsStats {
  entries: number;
  uncompressed: number;
  compressed: number;
}

/** Writes `layout` to `outFile` as a compressed cpio archive. */
export async function writeInitramfs(layout: InitramfsLayout, outFile: string, compression: Compression): Promise<InitramfsStats> {
  const fd = openSync(outFile, 'w');
  let stats: Omit<InitramfsStats, 'compressed'> = { entries: 0, uncompressed: 0 };
  try {
    const [cmd, args] = COMPRESSOR[compression];
    await runPipe(cmd, args, fd, async (stdin) => {
      const writer = new CpioWriter(
        (chunk) =>
          new Promise<void>((resolve, reject) => {
            stdin.write(chunk, (err) => (err ? reject(err) : resolve()));
          }),
      );
      for (const e of layout.entries()) await writer.add(e);
      await writer.finish();
      stats = { entries: writer.entries, uncompressed: writer.bytesWritten };
    });
  } finally {
    closeSync(fd);
  }
  return { ...stats, compressed: statSync(outFile).size };
}
