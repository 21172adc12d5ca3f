// Tests that run this checkout's code as an unprivileged user (nobody) need
// that user to reach it: every directory on the way searchable, the files
// readable. A clone in a private directory (mktemp -d makes 0700) is not, and
// there those tests cannot run: they are skipped, saying which directory.
import { spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import { repoRoot } from '../../src/repo-root';
import { skipTest } from './skip';

export const NOBODY_UID = 65534;

/** Why `uid` cannot read `file` (a file of this checkout), or undefined when it can. */
export function unreachableBy(uid: number, file = path.join(repoRoot(), 'dist', 'src', 'repo-root.js')): string | undefined {
  const r = spawnSync('setpriv', [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', '--', 'test', '-r', file]);
  if (r.status === 0) return undefined;
  for (let dir = path.dirname(file); ; dir = path.dirname(dir)) {
    const mode = statSync(dir).mode;
    if ((mode & 0o001) === 0) return `uid ${uid} cannot enter ${dir} (mode ${(mode & 0o777).toString(8)}), on the way to this checkout: clone it where others may read it`;
    if (dir === path.dirname(dir)) break;
  }
  return `uid ${uid} cannot read ${file}`;
}

/** Why nobody cannot run this checkout, looked at once per test file. */
let nobodyWhy: string | undefined | null = null;

/** A test that runs this checkout's code as nobody: skipped, with the reason, where nobody cannot reach it. */
export function nobodyTest(name: string, fn: () => unknown): void {
  if (nobodyWhy === null) nobodyWhy = unreachableBy(NOBODY_UID);
  const why = nobodyWhy;
  if (why) skipTest(name, why);
  else test(name, fn as () => void);
}
