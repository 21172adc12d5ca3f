// Kernel modules for the initramfs: which .ko files a list of module names
// needs (each module's .modinfo "depends=", which is what depmod writes into
// modules.dep), in what order to load them, and their bytes decompressed
// (.ko.xz/.ko.zst/.ko.gz) so that busybox insmod can load them.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { elfSection } from './elf';
import { runBytes } from './exec';
import type { PackageTree } from './package-tree';

export class ModuleError extends Error {
  override name = 'ModuleError';
}

const KO_RE = /\.ko(\.xz|\.zst|\.gz)?$/;

/** "kernel/drivers/vfio/pci/vfio-pci.ko.xz" -> "vfio_pci" (module names treat '-' and '_' alike). */
export function moduleName(file: string): string {
  return path.posix.basename(file).replace(KO_RE, '').replace(/-/g, '_');
}

/** modules.dep: "kernel/a.ko: kernel/b.ko kernel/c.ko" per line -> path -> dependency paths. */
export function parseModulesDep(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const colon = line.indexOf(':');
    if (colon < 0) throw new ModuleError(`modules.dep: no ':' in "${line}"`);
    out.set(line.slice(0, colon).trim(), line.slice(colon + 1).trim().split(/\s+/).filter(Boolean));
  }
  return out;
}

export function formatModulesDep(dep: Map<string, string[]>): string {
  return [...dep.entries()].map(([m, d]) => `${m}:${d.length ? ` ${d.join(' ')}` : ''}\n`).join('');
}

/**
 * The modules to load for `wanted` (names or paths), dependencies first, each once.
 * Throws on a name modules.dep does not know and on a dependency cycle.
 */
export function orderModules(dep: Map<string, string[]>, wanted: readonly string[]): string[] {
  const byName = new Map<string, string>();
  for (const p of dep.keys()) byName.set(moduleName(p), p);
  const find = (n: string): string | undefined => (dep.has(n) ? n : byName.get(moduleName(n)));
  const unknown = wanted.filter((w) => !find(w));
  if (unknown.length > 0) throw new ModuleError(`unknown module(s): ${unknown.join(', ')}`);
  const order: string[] = [];
  const done = new Set<string>();
  const active: string[] = [];
  const visit = (p: string, from: string): void => {
    if (done.has(p)) return;
    if (active.includes(p)) throw new ModuleError(`module dependency cycle: ${[...active.slice(active.indexOf(p)), p].map(moduleName).join(' -> ')}`);
    const deps = dep.get(p);
    if (!deps) throw new ModuleError(`${moduleName(from)} depends on ${p}, which modules.dep does not list`);
    active.push(p);
    for (const d of deps) visit(find(d) ?? d, p);
    active.pop();
    done.add(p);
    order.push(p);
  };
  for (const w of wanted) visit(find(w)!, w);
  return order;
}

/** The key=value strings of a module's .modinfo section; a key may repeat. */
export function parseModinfo(section: Buffer): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const s of section.toString('utf8').split('\0')) {
    const eq = s.indexOf('=');
    if (eq <= 0) continue;
    const k = s.slice(0, eq);
    out.set(k, [...(out.get(k) ?? []), s.slice(eq + 1)]);
  }
  return out;
}

/** The plain ELF bytes of a module file, decompressing .ko.xz/.ko.zst/.ko.gz. */
export async function readModule(file: string): Promise<Buffer> {
  if (file.endsWith('.ko')) return readFileSync(file);
  if (file.endsWith('.gz')) return gunzipSync(readFileSync(file));
  const tool = file.endsWith('.xz') ? 'xz' : file.endsWith('.zst') ? 'zstd' : '';
  if (!tool) throw new ModuleError(`${file}: not a kernel module file name`);
  return runBytes(tool, ['-dc', file]).catch((e: Error) => {
    throw new ModuleError(`${file}: cannot decompress (${e.message})`);
  });
}

export interface StagedModule {
  /** Path relative to /lib/modules/<release>, always ending in ".ko" (decompressed). */
  rel: string;
  name: string;
  bytes: Buffer;
  /** The file as shipped, e.g. ".ko.xz" (for the progress report). */
  shippedAs: string;
}

export interface ModuleSet {
  release: string;
  /** Modules to put into the initramfs, in load order. */
  modules: StagedModule[];
  /** modules.dep for those modules (transitive dependencies, modprobe's convention). */
  dep: Map<string, string[]>;
  /** Wanted modules that are built into this kernel (nothing to load). */
  builtin: string[];
}

/** Collects `wanted` and their dependencies from the kernel package's /lib/modules/<release>. */
export async function collectModules(tree: PackageTree, release: string, wanted: readonly string[]): Promise<ModuleSet> {
  const base = `/usr/lib/modules/${release}`;
  const index = new Map<string, string>(); // name -> guest path of the shipped file
  for (const [p, e] of tree.entries) {
    if (e.kind === 'file' && p.startsWith(`${base}/`) && KO_RE.test(p)) index.set(moduleName(p), p);
  }
  if (index.size === 0) throw new ModuleError(`no kernel modules under ${base}`);
  const builtinFile = tree.resolve(`${base}/modules.builtin`);
  const builtinNames = new Set(
    builtinFile ? readFileSync(builtinFile.entry.host, 'utf8').split('\n').filter(Boolean).map(moduleName) : [],
  );

  const direct = new Map<string, string[]>(); // name -> direct dependency names
  const staged = new Map<string, StagedModule>();
  const builtin: string[] = [];
  const queue = wanted.map((w) => w.replace(/-/g, '_'));
  while (queue.length > 0) {
    const name = queue.shift()!;
    if (staged.has(name) || builtin.includes(name)) continue;
    const p = index.get(name);
    if (!p) {
      if (builtinNames.has(name)) {
        builtin.push(name);
        continue;
      }
      throw new ModuleError(`kernel module ${name} is not in ${base} (neither a module nor built in)`);
    }
    const e = tree.resolve(p)!.entry;
    const bytes = await readModule(e.host);
    const section = elfSection(bytes, '.modinfo');
    if (!section) throw new ModuleError(`${p}: no .modinfo section`);
    const info = parseModinfo(section);
    const deps = (info.get('depends')?.[0] ?? '').split(',').filter(Boolean).map((d) => d.replace(/-/g, '_'));
    const rel = p.slice(base.length + 1).replace(KO_RE, '.ko');
    direct.set(name, deps);
    staged.set(name, { rel, name, bytes, shippedAs: path.posix.basename(p) });
    queue.push(...deps);
  }

  // modules.dep lists every module's dependencies transitively.
  const dep = new Map<string, string[]>();
  const closure = (n: string, seen: Set<string>): void => {
    for (const d of direct.get(n) ?? []) {
      if (!seen.has(d) && staged.has(d)) {
        seen.add(d);
        closure(d, seen);
      }
    }
  };
  for (const [n, m] of staged) {
    const seen = new Set<string>();
    closure(n, seen);
    dep.set(m.rel, [...seen].map((d) => staged.get(d)!.rel));
  }
  const order = orderModules(
    dep,
    wanted.map((w) => w.replace(/-/g, '_')).filter((w) => !builtin.includes(w)),
  );
  const byRel = new Map([...staged.values()].map((m) => [m.rel, m]));
  return { release, modules: order.map((r) => byRel.get(r)!), dep, builtin };
}
