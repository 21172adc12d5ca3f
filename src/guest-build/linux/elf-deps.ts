// The shared-library closure of ELF binaries, resolved the way the glibc
// loader would resolve it in the guest: DT_RPATH (when there is no
// DT_RUNPATH), DT_RUNPATH ($ORIGIN expanded), then Debian's default
// multiarch directories. Everything is looked up in the staged packages
// (never on the host); a library that is not there yet is asked for from a
// callback that can stage more packages.
import path from 'node:path';
import { isElf, readElf, type ElfInfo } from './elf';
import { readFileSync } from 'node:fs';
import { guestPath, type PackageTree } from './package-tree';

/** ld.so's built-in search path on Debian amd64 (no /etc/ld.so.cache in the guest). */
export const DEFAULT_LIB_DIRS = ['/lib/x86_64-linux-gnu', '/usr/lib/x86_64-linux-gnu', '/lib', '/usr/lib'];

export class ElfDepsError extends Error {
  override name = 'ElfDepsError';
}

export interface MissingLibrary {
  /** The soname (or the program interpreter's file name). */
  soname: string;
  /** Guest path of the object that needs it, and that object's package. */
  neededBy: string;
  pkg: string;
}

/**
 * Asked for libraries (or program interpreters) that are not in the tree. Stages more packages and
 * resolves true if it staged anything (the lookups are then retried), false if it has nothing more to try.
 */
export type MoreLibraries = (missing: readonly MissingLibrary[]) => Promise<boolean>;

export interface ElfObject {
  pkg: string;
  interp?: string;
  /** DT_NEEDED -> guest path it resolved to. */
  needed: Map<string, string>;
}

export interface ElfClosure {
  /** Guest paths to copy into the image: regular files and the symlinks that lead to them. */
  paths: Set<string>;
  /** Every ELF object reached, by guest path of the file. */
  objects: Map<string, ElfObject>;
}

function expand(dir: string, origin: string): string {
  return dir
    .replace(/\$\{ORIGIN\}|\$ORIGIN/g, origin)
    .replace(/\$\{LIB\}|\$LIB/g, 'lib/x86_64-linux-gnu')
    .replace(/\$\{PLATFORM\}|\$PLATFORM/g, 'x86_64');
}

export function searchDirs(info: Pick<ElfInfo, 'rpath' | 'runpath'>, file: string): string[] {
  const origin = path.posix.dirname(file);
  const own = info.runpath.length > 0 ? info.runpath : info.rpath;
  return [...own.map((d) => expand(d, origin)), ...DEFAULT_LIB_DIRS];
}

/** Finds `soname` for the object at `file` in the tree; returns the path the loader would open (merged-/usr form). */
export function findLibrary(tree: PackageTree, soname: string, info: Pick<ElfInfo, 'rpath' | 'runpath'>, file: string): string | undefined {
  if (soname.includes('/')) return tree.resolve(soname) ? guestPath(soname) : undefined;
  for (const dir of searchDirs(info, file)) {
    const p = guestPath(path.posix.join(dir, soname));
    if (tree.resolve(p)) return p;
  }
  return undefined;
}

interface Pending extends MissingLibrary {
  lookup: () => string | undefined;
  found: (p: string) => void;
}

/**
 * The closure of `roots` (guest paths). Works in rounds: everything resolvable is followed; what is not
 * is asked for from `more` in one batch, and the round repeats until nothing is missing.
 */
export async function elfClosure(tree: PackageTree, roots: readonly string[], more: MoreLibraries): Promise<ElfClosure> {
  const paths = new Set<string>();
  const objects = new Map<string, ElfObject>();
  const queue = [...roots];
  let pending: Pending[] = [];

  const need = (p: Pending): void => {
    const hit = p.lookup();
    if (hit) {
      p.found(hit);
      queue.push(hit);
    } else pending.push(p);
  };

  const visit = (p: string): void => {
    const r = tree.resolve(p);
    if (!r) throw new ElfDepsError(`${p}: not found in the staged packages`);
    for (const c of r.chain) paths.add(c);
    if (objects.has(r.path)) return;
    const bytes = readFileSync(r.entry.host);
    const obj: ElfObject = { pkg: r.entry.pkg, needed: new Map() };
    objects.set(r.path, obj);
    if (!isElf(bytes)) return;
    const info = readElf(bytes);
    const base = { neededBy: r.path, pkg: r.entry.pkg };
    const interp = info.interp;
    if (interp) {
      need({
        ...base,
        soname: path.posix.basename(interp),
        lookup: () => (tree.resolve(interp) ? interp : undefined),
        found: (x) => {
          obj.interp = x;
        },
      });
    }
    for (const soname of info.needed) {
      need({
        ...base,
        soname,
        lookup: () => findLibrary(tree, soname, info, r.path),
        found: (x) => {
          obj.needed.set(soname, x);
        },
      });
    }
  };

  for (;;) {
    while (queue.length > 0) visit(queue.shift()!);
    if (pending.length === 0) break;
    const waiting = pending;
    pending = [];
    for (const p of waiting) need(p); // staged since it was asked for?
    if (queue.length > 0) continue;
    if (!(await more(pending))) {
      const list = pending.map((p) => `${p.soname} (needed by ${p.neededBy}, package ${p.pkg})`);
      throw new ElfDepsError(`not in any staged package: ${list.join('; ')}`);
    }
  }
  return { paths, objects };
}
