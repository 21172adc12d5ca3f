// The checkout's root, found from a module's own directory (src/ when run
// with ts-node, dist/src/ when compiled): the nearest directory above it that
// holds both package.json and guest-images/.
import { existsSync } from 'node:fs';
import path from 'node:path';

export function repoRoot(from: string = __dirname): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'guest-images')) && existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`no checkout (package.json and guest-images/) above ${from}`);
  }
}
