// Loading a module graph of this package with V8 code caches, for start-up
// time: `xdpvm run` spent more of its boot loading its ~110 modules (resolving
// each require through the file system, compiling each file) than running the
// VM, and each of its worker threads loads its own graph again. Node 20 has no
// module.enableCompileCache (Node 22); this is the same idea for CommonJS:
//
// - every .js file of the package in the graph is compiled as Node would
//   (Module.wrap, vm.Script with the file's real path, so stack traces are
//   unchanged) with the bytecode V8 produced for it last time (cachedData);
// - how each require() resolved is remembered, so a cached run does not
//   search the file system again;
// - builtins, native addons (.node) and anything outside the package go
//   through Node's own require.
//
// One cache file per graph (dist/.module-cache/NAME.bin). It is written when
// the process or thread exits normally after a run that compiled something
// without a cache (first run, a rebuilt file, another V8), so it holds the
// bytecode of every function that ran, boot included; a run that used it
// writes nothing. A file's cached bytecode is used only while the file has the
// size and mtime it had when that bytecode was made (V8 itself checks only the
// source length). XDPVM_MODULE_CACHE=0 loads with plain require().
import { closeSync, fstatSync, mkdirSync, openSync, readFileSync, readSync, renameSync, writeFileSync } from 'node:fs';
import { builtinModules, createRequire } from 'node:module';
import path from 'node:path';
import vm from 'node:vm';

/** dist/ (this file is dist/src/host/module-cache.js). */
const DIST = path.resolve(__dirname, '..', '..');
const ROOT = path.resolve(DIST, '..');
const CACHE_DIR = path.join(DIST, '.module-cache');
const MAGIC = 'XDPVM-MODULE-CACHE-1\n';
const BUILTINS = new Set(builtinModules);

/** Node's CommonJS wrapper (Module.wrap): the module's code starts on line 1 as in Node. */
const WRAP_HEAD = '(function (exports, require, module, __filename, __dirname) { ';
const WRAP_TAIL = '\n});';

interface CachedFile {
  file: string;
  size: number;
  mtimeMs: number;
  offset: number;
  length: number;
}

interface Header {
  v8: string;
  arch: string;
  files: CachedFile[];
  /** `${from}\0${request}` -> resolved file. */
  resolved: Record<string, string>;
}

interface Loaded {
  module: { exports: unknown };
  script: vm.Script | undefined;
  size: number;
  mtimeMs: number;
}

export function moduleCacheEnabled(): boolean {
  return process.env.XDPVM_MODULE_CACHE !== '0';
}

/** The cache's name for an entry file: its path in the package, flattened. */
function cacheName(entry: string, variant: string | undefined): string {
  const rel = path.relative(ROOT, entry).replace(/\.js$/, '').replace(/[^A-Za-z0-9]+/g, '-');
  return variant ? `${rel}.${variant.replace(/[^A-Za-z0-9-]+/g, '_')}` : rel;
}

function readCache(file: string): { header: Header; blob: Buffer } | undefined {
  let blob: Buffer;
  try {
    blob = readFileSync(file);
  } catch {
    return undefined;
  }
  const nl = blob.indexOf(10, MAGIC.length);
  if (blob.subarray(0, MAGIC.length).toString('latin1') !== MAGIC || nl < 0) return undefined;
  try {
    const header = JSON.parse(blob.subarray(MAGIC.length, nl).toString('utf8')) as Header;
    if (header.v8 !== process.versions.v8 || header.arch !== process.arch || !Array.isArray(header.files)) return undefined;
    return { header, blob: blob.subarray(nl + 1) };
  } catch {
    return undefined;
  }
}

/** This thread's loads through the cache: files compiled, how many with their cached bytecode. */
export const moduleCacheStats = { files: 0, fromCache: 0, rejected: 0, written: false };

class GraphLoader {
  private readonly loaded = new Map<string, Loaded>();
  private readonly order: string[] = [];
  private readonly cached = new Map<string, CachedFile>();
  private readonly resolved: Record<string, string>;
  private blob: Buffer = Buffer.alloc(0);
  /** Something was compiled without its bytecode, or resolved anew: write the cache at exit. */
  private dirty = false;

  constructor(private readonly cacheFile: string) {
    const c = readCache(cacheFile);
    if (c) {
      this.blob = c.blob;
      for (const f of c.header.files) this.cached.set(f.file, f);
      this.resolved = c.header.resolved;
    } else {
      this.resolved = {};
      this.dirty = true;
    }
  }

  require(file: string): unknown {
    const had = this.loaded.get(file);
    if (had) return had.module.exports;
    // One open: the bytes and the size/mtime they are checked against come from the same file version.
    const fd = openSync(file, 'r');
    let source: string;
    let size: number;
    let mtimeMs: number;
    try {
      const st = fstatSync(fd);
      size = st.size;
      mtimeMs = st.mtimeMs;
      const buf = Buffer.allocUnsafe(size);
      let at = 0;
      while (at < size) {
        const n = readSync(fd, buf, at, size - at, at);
        if (n === 0) break;
        at += n;
      }
      source = buf.toString('utf8', 0, at);
    } finally {
      closeSync(fd);
    }
    const c = this.cached.get(file);
    const cachedData = c && c.size === size && c.mtimeMs === mtimeMs ? this.blob.subarray(c.offset, c.offset + c.length) : undefined;
    const script = new vm.Script(WRAP_HEAD + source + WRAP_TAIL, { filename: file, ...(cachedData ? { cachedData } : {}) });
    moduleCacheStats.files++;
    if (cachedData && !script.cachedDataRejected) moduleCacheStats.fromCache++;
    else {
      if (cachedData) moduleCacheStats.rejected++;
      this.dirty = true;
    }
    const module = { exports: {} as unknown };
    this.loaded.set(file, { module, script, size, mtimeMs });
    this.order.push(file);
    const fn = script.runInThisContext() as (exports: unknown, require: NodeJS.Require, module: unknown, filename: string, dirname: string) => void;
    fn.call(module.exports, module.exports, this.requireFrom(file), module, file, path.dirname(file));
    return module.exports;
  }

  private requireFrom(from: string): NodeJS.Require {
    // Node's require for `from`, made only when a request must really be resolved (createRequire costs
    // about 0.1 ms a module, most of a cached load): builtins and resolved files need no particular one.
    let native: NodeJS.Require | undefined;
    const nativeFrom = (): NodeJS.Require => (native ??= createRequire(from));
    const req = ((request: string): unknown => {
      if (request.startsWith('node:') || BUILTINS.has(request)) return require(request);
      const key = `${from}\0${request}`;
      let file = this.resolved[key];
      const remembered = file !== undefined;
      if (file === undefined) {
        file = nativeFrom().resolve(request);
        this.resolved[key] = file;
        this.dirty = true;
      }
      // This package's own JavaScript goes through the cache; addons, JSON and other packages through Node.
      if (!(file.endsWith('.js') && file.startsWith(ROOT + path.sep) && !file.includes(`${path.sep}node_modules${path.sep}`))) return require(file);
      try {
        return this.require(file);
      } catch (e) {
        // A remembered resolution to a file that is gone (the tree changed): resolve again.
        if (!remembered || this.loaded.has(file) || (e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
        delete this.resolved[key];
        this.dirty = true;
        return req(request);
      }
    }) as NodeJS.Require;
    req.resolve = ((request: string, options?: { paths?: string[] }) => nativeFrom().resolve(request, options)) as NodeJS.RequireResolve;
    req.cache = require.cache;
    req.main = undefined;
    return req;
  }

  /** At exit: the bytecode of every file loaded (with what ran of it compiled), if anything was missing. */
  save(): void {
    if (!this.dirty) return;
    const files: CachedFile[] = [];
    const parts: Buffer[] = [];
    let offset = 0;
    for (const file of this.order) {
      const l = this.loaded.get(file)!;
      if (!l.script) continue;
      const data = l.script.createCachedData();
      files.push({ file, size: l.size, mtimeMs: l.mtimeMs, offset, length: data.length });
      parts.push(data);
      offset += data.length;
    }
    const header: Header = { v8: process.versions.v8, arch: process.arch, files, resolved: this.resolved };
    try {
      mkdirSync(CACHE_DIR, { recursive: true });
      const tmp = `${this.cacheFile}.${process.pid}.${Math.random().toString(36).slice(2)}`;
      writeFileSync(tmp, Buffer.concat([Buffer.from(`${MAGIC}${JSON.stringify(header)}\n`), ...parts]));
      renameSync(tmp, this.cacheFile);
      moduleCacheStats.written = true;
    } catch {
      // A read-only installation (or another user's): run without a cache.
    }
  }
}

/**
 * require(entry) through the code cache of its graph (`variant` tells graphs of one entry apart, such as
 * the CLI's commands). With XDPVM_MODULE_CACHE=0, or if the cache machinery itself fails before the entry
 * ran, plain require().
 */
export function requireCached(entry: string, variant?: string): unknown {
  const file = path.resolve(entry);
  if (!moduleCacheEnabled()) return require(file);
  const loader = new GraphLoader(path.join(CACHE_DIR, `${cacheName(file, variant)}.bin`));
  process.once('exit', () => loader.save());
  return loader.require(file);
}

/**
 * The code a worker_thread runs (Worker with eval: true) to load `file` through its graph's cache; its
 * workerData and messages are the file's as with `new Worker(file)`.
 */
export function cachedWorkerSource(file: string): string {
  if (!moduleCacheEnabled()) return `require(${JSON.stringify(file)});`;
  return `require(${JSON.stringify(__filename)}).requireCached(${JSON.stringify(file)});`;
}
