// The guest image's cache key: it changes when a package version or any
// builder source (code, init script, lists) changes, not when nothing does;
// an image on disk is up to date only if its manifest, the archive's current
// versions, the builder hash and its files all agree.
import { cpSync, mkdtempSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { AptPackage } from '../src/guest-build/linux/apt';
import { linuxImageBuilderSources } from '../src/guest-build/linux/linux-image';
import { repoRoot } from '../src/repo-root';
import {
  checkFreshness,
  computeInputHash,
  fileInfo,
  hashBuilderSources,
  MANIFEST_FILE,
  type ImageManifest,
  type ManifestPackage,
} from '../src/guest-build/linux/manifest';

const PKGS: ManifestPackage[] = [
  { name: 'iperf3', version: '3.12-1+deb12u2', arch: 'amd64', role: 'content', deb: 'iperf3_3.12-1+deb12u2_amd64.deb', sha256: 'x' },
  { name: 'libc6', version: '2.36-9+deb12u14', arch: 'amd64', role: 'library', deb: 'libc6_2.36-9+deb12u14_amd64.deb', sha256: 'y' },
];

test('input hash: stable, order-independent, changes with a version or the builder', () => {
  const h = computeInputHash('builder-a', PKGS);
  assert.is(h, computeInputHash('builder-a', [...PKGS].reverse()));
  assert.is.not(h, computeInputHash('builder-b', PKGS));
  const bumped = PKGS.map((p) => (p.name === 'libc6' ? { ...p, version: '2.36-9+deb12u15' } : p));
  assert.is.not(h, computeInputHash('builder-a', bumped));
  assert.is.not(h, computeInputHash('builder-a', PKGS.slice(1)));
});

test('builder sources include the init script, the lists and the TypeScript', () => {
  const root = repoRoot();
  const files = linuxImageBuilderSources(root);
  for (const f of ['guest-images/linux/init', 'guest-images/linux/packages.txt', 'guest-images/linux/modules.txt', 'src/guest-build/linux/linux-image.ts', 'src/guest-build/linux/cpio.ts']) {
    assert.ok(files.includes(f), `${f} in ${files.join(' ')}`);
  }
  assert.not.ok(files.some((f) => f.startsWith('guest-images/out')), 'build output is not an input');
});

test('builder hash changes when the init script changes by one byte, or a file appears', () => {
  const root = repoRoot();
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'img-key-'));
  try {
    cpSync(path.join(root, 'guest-images', 'linux'), path.join(tmp, 'guest-images', 'linux'), { recursive: true });
    cpSync(path.join(root, 'src', 'guest-build', 'linux'), path.join(tmp, 'src', 'guest-build', 'linux'), { recursive: true });
    const files = (): string[] => linuxImageBuilderSources(tmp);
    const before = hashBuilderSources(tmp, files());
    assert.is(hashBuilderSources(tmp, files()), before, 'deterministic');
    assert.is(before, hashBuilderSources(root, linuxImageBuilderSources(root)), 'same content, same hash');
    appendFileSync(path.join(tmp, 'guest-images', 'linux', 'init'), ' ');
    const edited = hashBuilderSources(tmp, files());
    assert.is.not(edited, before);
    writeFileSync(path.join(tmp, 'guest-images', 'linux', 'extra.txt'), '');
    assert.is.not(hashBuilderSources(tmp, files()), edited);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

/** An apt stand-in that knows fixed candidate versions. */
function fakeApt(versions: Record<string, string>): { show(names: readonly string[]): Promise<Map<string, AptPackage>> } {
  return {
    show: async (names) =>
      new Map(
        names
          .filter((n) => versions[n])
          .map((n) => [n, { name: n, version: versions[n]!, arch: 'amd64', sha256: '', size: 0, depends: [] }] as const),
      ),
  };
}

test('freshness: up to date only with same versions, same builder and intact files', async () => {
  const out = mkdtempSync(path.join(os.tmpdir(), 'img-fresh-'));
  try {
    writeFileSync(path.join(out, 'vmlinuz'), 'kernel bytes');
    writeFileSync(path.join(out, 'initrd.img'), 'initrd bytes');
    const m: ImageManifest = {
      format: 1,
      inputHash: computeInputHash('B', PKGS),
      builderHash: 'B',
      builtAt: new Date(0).toISOString(),
      buildSeconds: 1,
      kernelRelease: '6.1.0-test',
      packages: PKGS,
      modules: [],
      builtinModules: [],
      elf: {},
      kernelConfig: {},
      kernel: await fileInfo(path.join(out, 'vmlinuz')),
      initrd: { ...(await fileInfo(path.join(out, 'initrd.img'))), compression: 'zstd', uncompressedSize: 1, entries: 1 },
    };
    writeFileSync(path.join(out, MANIFEST_FILE), JSON.stringify(m));
    const same = fakeApt({ iperf3: '3.12-1+deb12u2', libc6: '2.36-9+deb12u14' });

    const ok = await checkFreshness(out, 'B', same);
    assert.ok(ok.upToDate, JSON.stringify(ok));

    const builder = await checkFreshness(out, 'C', same);
    assert.not.ok(builder.upToDate);
    if (!builder.upToDate) assert.match(builder.reason, /builder/);

    const newer = await checkFreshness(out, 'B', fakeApt({ iperf3: '3.12-1+deb12u3', libc6: '2.36-9+deb12u14' }));
    assert.not.ok(newer.upToDate);
    if (!newer.upToDate) assert.match(newer.reason, /iperf3 3\.12-1\+deb12u2 -> 3\.12-1\+deb12u3/);

    const gone = await checkFreshness(out, 'B', fakeApt({ iperf3: '3.12-1+deb12u2' }));
    assert.not.ok(gone.upToDate);

    writeFileSync(path.join(out, 'initrd.img'), 'initrd bytez');
    const tampered = await checkFreshness(out, 'B', same);
    assert.not.ok(tampered.upToDate);
    if (!tampered.upToDate) assert.match(tampered.reason, /initrd\.img/);

    rmSync(path.join(out, MANIFEST_FILE));
    assert.not.ok((await checkFreshness(out, 'B', same)).upToDate);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test.run();
