// The PMD test guest (guest-images/pmd/), built from source by its own script,
// which rebuilds only when a source changed; this module runs the script and
// returns the image's path.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../repo-root';

/**
 * Builds guest-images/out/pmd.elf if it is missing or stale (the PMD test
 * guest, guest-images/pmd/README.md) and returns its absolute path. Needs
 * gcc only when a build is due.
 */
export function ensurePmdImage(): string {
  const root = repoRoot();
  const script = path.join(root, 'guest-images', 'pmd', 'build.sh');
  const r = spawnSync('sh', [script], { cwd: root, encoding: 'utf8' });
  if (r.error) throw new Error(`guest-images/pmd/build.sh: ${r.error.message}`);
  if (r.status !== 0) {
    throw new Error(`guest-images/pmd/build.sh failed (exit ${r.status ?? r.signal}):\n${(r.stderr || r.stdout).trim()}`);
  }
  const out = r.stdout.trim().split('\n').pop() ?? '';
  if (!out || !existsSync(out)) throw new Error(`guest-images/pmd/build.sh did not produce an image (said: ${r.stdout.trim()})`);
  return out;
}
