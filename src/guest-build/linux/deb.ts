// Unpacking a .deb without installing it: `dpkg-deb -x` into a directory of
// its own, then a listing of what came out (files, symlinks, directories).
import { lstatSync, mkdirSync, readdirSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { run } from './exec';

export type DebEntry =
  | { path: string; kind: 'file'; size: number; mode: number }
  | { path: string; kind: 'symlink'; target: string }
  | { path: string; kind: 'dir' };

/** Unpacks `deb` into `dir` (created; should be empty). */
export async function extractDeb(deb: string, dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  await run('dpkg-deb', ['-x', deb, dir]);
}

/** Everything under `dir`, as absolute guest-style paths ("/usr/bin/x"), sorted. */
export function listTree(dir: string): DebEntry[] {
  const out: DebEntry[] = [];
  const walk = (rel: string): void => {
    for (const name of readdirSync(path.join(dir, rel)).sort()) {
      const r = `${rel}/${name}`;
      const st = lstatSync(path.join(dir, r));
      if (st.isSymbolicLink()) out.push({ path: r, kind: 'symlink', target: readlinkSync(path.join(dir, r)) });
      else if (st.isDirectory()) {
        out.push({ path: r, kind: 'dir' });
        walk(r);
      } else if (st.isFile()) out.push({ path: r, kind: 'file', size: st.size, mode: st.mode & 0o7777 });
    }
  };
  walk('');
  return out;
}
