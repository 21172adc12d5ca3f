// Builds the native addons with node-gyp against this Node's own headers
// (no download: the machines reach only the npm and Debian registries).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const args = [process.argv[2] === 'build' ? 'build' : 'rebuild'];
// Node's headers: the distribution's (/usr/include/node), or next to the running node binary.
const candidates = [process.env.npm_config_nodedir, path.resolve(process.execPath, '..', '..'), '/usr'];
const nodedir = candidates.find((d) => d && existsSync(path.join(d, 'include', 'node', 'node_api.h')));
if (nodedir) args.push(`--nodedir=${nodedir}`);
let gyp;
for (const id of ['node-gyp/bin/node-gyp.js']) {
  try { gyp = require.resolve(id); } catch { /* not a local dependency */ }
}
gyp ??= path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
// Two builds in one tree at once clobber build/: serialize them on a lock
// beside the tree (flock from util-linux; without it, build unguarded).
const cmd = [process.execPath, gyp, ...args, '--jobs=2'];
const lock = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '.native-build.lock');
const r = existsSync('/usr/bin/flock')
  ? spawnSync('/usr/bin/flock', [lock, ...cmd], { stdio: 'inherit' })
  : spawnSync(cmd[0], cmd.slice(1), { stdio: 'inherit' });
process.exit(r.status ?? 1);
