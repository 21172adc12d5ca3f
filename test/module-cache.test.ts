// The CLI's and the workers' module graphs load through V8 code caches
// (src/host/module-cache.ts): a first process compiles and writes the cache
// at exit, the next one takes every file's bytecode from it and writes
// nothing, a file changed since (same length: V8 alone would take the stale
// bytecode) is compiled from its new source, stack traces name the real
// files, and XDPVM_MODULE_CACHE=0 loads with plain require(). Each case is
// a fresh process, as the CLI is.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../src/repo-root';

const root = repoRoot();
const fixture = path.join(root, 'dist', 'test', `module-cache-fixture-${process.pid}`);
const entry = path.join(fixture, 'a.js');
const cacheFile = path.join(root, 'dist', '.module-cache', `${path.relative(root, path.join(fixture, 'a')).replace(/[^A-Za-z0-9]+/g, '-')}.bin`);
const moduleCache = path.join(root, 'dist', 'src', 'host', 'module-cache.js');

interface ChildResult {
  value: number;
  stack: string;
  stats: { files: number; fromCache: number; rejected: number; written: boolean };
}

function child(env: NodeJS.ProcessEnv = {}): ChildResult {
  // The result is printed after the cache's own exit handler ran (listeners run in order).
  const script = `
    const mc = require(${JSON.stringify(moduleCache)});
    const a = mc.requireCached(${JSON.stringify(entry)});
    let stack = '';
    try { a.fail(); } catch (e) { stack = e.stack; }
    process.on('exit', () => process.stdout.write(JSON.stringify({ value: a.value(), stack, stats: mc.moduleCacheStats })));`;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { ...process.env, ...env } });
  assert.is(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as ChildResult;
}

function writeB(n: number): void {
  writeFileSync(path.join(fixture, 'b.js'), `'use strict';\nexports.n = () => ${n};\n`);
}

test.before(() => {
  mkdirSync(fixture, { recursive: true });
  writeFileSync(
    entry,
    `'use strict';\nconst path = require('node:path');\nconst b = require('./b');\n` +
      `exports.value = () => b.n() + path.sep.length;\nexports.fail = () => { throw new Error('from a'); };\n`,
  );
  writeB(1);
  rmSync(cacheFile, { force: true });
});

test.after(() => {
  rmSync(fixture, { recursive: true, force: true });
  rmSync(cacheFile, { force: true });
});

test('a first run compiles and writes the cache, the next takes all bytecode from it and writes nothing', () => {
  const first = child();
  assert.is(first.value, 2);
  assert.equal(first.stats, { files: 2, fromCache: 0, rejected: 0, written: true });
  assert.ok(statSync(cacheFile).size > 0);
  const second = child();
  assert.is(second.value, 2);
  assert.equal(second.stats, { files: 2, fromCache: 2, rejected: 0, written: false });
});

test('stack traces name the real file, cached or not', () => {
  const r = child();
  assert.match(r.stack, `${entry}:5`);
});

test('a file changed since (same length) is compiled from its new source, and the cache is rewritten', () => {
  child();
  const before = statSync(path.join(fixture, 'b.js')).mtimeMs;
  writeB(7);
  // The same length, and a different mtime even on a coarse clock.
  utimesSync(path.join(fixture, 'b.js'), new Date(), new Date(before + 5000));
  const r = child();
  assert.is(r.value, 8);
  assert.equal(r.stats, { files: 2, fromCache: 1, rejected: 0, written: true });
  assert.equal(child().stats, { files: 2, fromCache: 2, rejected: 0, written: false });
});

test('XDPVM_MODULE_CACHE=0 loads with plain require()', () => {
  const r = child({ XDPVM_MODULE_CACHE: '0' });
  assert.is(r.value, 8);
  assert.equal(r.stats, { files: 0, fromCache: 0, rejected: 0, written: false });
});

test.run();
