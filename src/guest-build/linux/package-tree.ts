// The files of the unpacked Debian packages as the guest will see them: one
// namespace in which /bin, /sbin, /lib and /lib64 are the /usr ones (merged
// /usr, as on a current Debian install), symlinks resolved inside that
// namespace (never on the host), and every path remembers its package.
import path from 'node:path';
import type { DebEntry } from './deb';

export type TreeEntry =
  | { pkg: string; kind: 'file'; host: string; size: number; mode: number }
  | { pkg: string; kind: 'symlink'; target: string }
  | { pkg: string; kind: 'dir' };

/** Top-level directories that are symlinks into /usr in the guest. */
export const MERGED_USR_DIRS = ['bin', 'sbin', 'lib', 'lib32', 'lib64', 'libx32'] as const;

/** "/lib/x86_64-linux-gnu/libc.so.6" -> "/usr/lib/x86_64-linux-gnu/libc.so.6"; normalizes "." and "..". */
export function guestPath(p: string): string {
  const n = path.posix.normalize(p.startsWith('/') ? p : `/${p}`);
  const top = n.split('/')[1] ?? '';
  return (MERGED_USR_DIRS as readonly string[]).includes(top) ? `/usr${n}` : n;
}

export class TreeError extends Error {
  override name = 'TreeError';
}

export class PackageTree {
  readonly entries = new Map<string, TreeEntry>();
  /** Paths two packages both ship as different files: the first package wins. */
  readonly conflicts: string[] = [];

  /** Adds the listing of one unpacked package rooted at host directory `root`. */
  add(pkg: string, root: string, listing: readonly DebEntry[]): void {
    for (const e of listing) {
      const p = guestPath(e.path);
      if (e.kind === 'dir') {
        if (!this.entries.has(p)) this.entries.set(p, { pkg, kind: 'dir' });
        continue;
      }
      const prev = this.entries.get(p);
      if (prev && prev.kind !== 'dir') {
        if (prev.pkg !== pkg) this.conflicts.push(`${p} (${prev.pkg}, ${pkg})`);
        continue;
      }
      this.entries.set(
        p,
        e.kind === 'file'
          ? { pkg, kind: 'file', host: path.join(root, e.path), size: e.size, mode: e.mode }
          : { pkg, kind: 'symlink', target: e.target },
      );
    }
  }

  /**
   * Follows `p` through symlinks to a regular file. Returns the file's path and every path passed through
   * (the symlinks, then the file), or undefined when it leads nowhere.
   */
  resolve(p: string): { path: string; chain: string[]; entry: TreeEntry & { kind: 'file' } } | undefined {
    const chain: string[] = [];
    let cur = guestPath(p);
    for (let hops = 0; hops < 40; hops++) {
      const e = this.entries.get(cur);
      if (!e || e.kind === 'dir') return undefined;
      chain.push(cur);
      if (e.kind === 'file') return { path: cur, chain, entry: e };
      cur = guestPath(e.target.startsWith('/') ? e.target : path.posix.join(path.posix.dirname(cur), e.target));
    }
    throw new TreeError(`${p}: too many levels of symbolic links`);
  }

  /** Paths matching a pattern in which `*` stands for any run of characters other than '/'. */
  glob(pattern: string): string[] {
    const g = guestPath(pattern);
    const re = new RegExp(`^${g.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('[^/]*')}$`);
    return [...this.entries.keys()].filter((k) => re.test(k)).sort();
  }

  /** Files and symlinks directly in directory `dir`. */
  list(dir: string): string[] {
    const d = guestPath(dir);
    return [...this.entries.entries()]
      .filter(([k, e]) => e.kind !== 'dir' && path.posix.dirname(k) === d)
      .map(([k]) => k)
      .sort();
  }
}
