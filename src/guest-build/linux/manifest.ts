// What a built image is made of (manifest.json) and whether it must be
// rebuilt: the inputs hash covers the exact version of every Debian package
// that went in and the builder's own source (src/guest-build/linux/*.ts and everything
// in guest-images/linux/, the init script included). Same inputs, same image:
// a second build is a no-op.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { sha256File, type Apt } from './apt';

export type PackageRole = 'kernel-meta' | 'kernel' | 'content' | 'library';

export interface ManifestPackage {
  name: string;
  version: string;
  arch: string;
  role: PackageRole;
  /** The .deb it came from (file name in the download cache) and its SHA256; empty for the metapackage. */
  deb: string;
  sha256: string;
}

export interface ManifestFile {
  file: string;
  size: number;
  sha256: string;
}

export interface ImageManifest {
  format: 1;
  inputHash: string;
  builderHash: string;
  builtAt: string;
  buildSeconds: number;
  /** `uname -r` of the guest kernel. */
  kernelRelease: string;
  packages: ManifestPackage[];
  /** Kernel modules in the order /init loads them (paths under /lib/modules/<release>). */
  modules: string[];
  /** Modules asked for that this kernel has built in. */
  builtinModules: string[];
  /** ELF programs and libraries in the image (guest path -> package). */
  elf: Record<string, string>;
  /** Kernel features the init script depends on, read from the kernel's config. */
  kernelConfig: Record<string, string>;
  kernel: ManifestFile;
  initrd: ManifestFile & { compression: string; uncompressedSize: number; entries: number };
}

export const MANIFEST_FILE = 'manifest.json';

export function sha256(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Relative paths of the builder's sources under `root`: `dirs` walked recursively, sorted. */
export function builderSources(root: string, dirs: readonly string[]): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    const abs = path.join(root, rel);
    if (!existsSync(abs)) return;
    if (statSync(abs).isDirectory()) {
      for (const n of readdirSync(abs).sort()) walk(path.join(rel, n));
    } else out.push(rel.split(path.sep).join('/'));
  };
  for (const d of dirs) walk(d);
  return out.sort();
}

/** One hash over the names and contents of `files` (relative to `root`). */
export function hashBuilderSources(root: string, files: readonly string[]): string {
  const h = createHash('sha256');
  for (const f of [...files].sort()) {
    const data = readFileSync(path.join(root, f));
    h.update(`${f}\0${data.length}\0`);
    h.update(data);
  }
  return h.digest('hex');
}

/** The cache key: builder hash plus each package's name, version and architecture. */
export function computeInputHash(builderHash: string, packages: readonly Pick<ManifestPackage, 'name' | 'version' | 'arch'>[]): string {
  const pk = [...packages].map((p) => `${p.name}=${p.version}/${p.arch}`).sort();
  return sha256(JSON.stringify({ builder: builderHash, packages: pk }));
}

export function readManifest(outDir: string): ImageManifest | undefined {
  const f = path.join(outDir, MANIFEST_FILE);
  if (!existsSync(f)) return undefined;
  try {
    const m = JSON.parse(readFileSync(f, 'utf8')) as ImageManifest;
    return m.format === 1 && typeof m.inputHash === 'string' && Array.isArray(m.packages) ? m : undefined;
  } catch {
    return undefined;
  }
}

export async function fileInfo(file: string): Promise<ManifestFile> {
  return { file: path.basename(file), size: statSync(file).size, sha256: await sha256File(file) };
}

export type Freshness = { upToDate: true; manifest: ImageManifest } | { upToDate: false; reason: string };

/**
 * Whether the image in `outDir` was built from the same inputs as would be used now: same builder
 * source, and every package it contains still at the version apt would fetch; and its files intact.
 */
export async function checkFreshness(outDir: string, builderHash: string, apt: Pick<Apt, 'show'>): Promise<Freshness> {
  const m = readManifest(outDir);
  if (!m) return { upToDate: false, reason: `no ${MANIFEST_FILE} in ${outDir}` };
  if (m.builderHash !== builderHash) return { upToDate: false, reason: 'the builder (src/guest-build/linux or guest-images/linux) changed' };
  const now = await apt.show(m.packages.map((p) => p.name));
  const changed: string[] = [];
  for (const p of m.packages) {
    const c = now.get(p.name);
    if (!c) changed.push(`${p.name} ${p.version} -> (no longer available)`);
    else if (c.version !== p.version || c.arch !== p.arch) changed.push(`${p.name} ${p.version} -> ${c.version}`);
  }
  if (changed.length > 0) return { upToDate: false, reason: `package versions changed: ${changed.join(', ')}` };
  if (computeInputHash(builderHash, m.packages) !== m.inputHash) return { upToDate: false, reason: 'inputs hash mismatch' };
  for (const f of [m.kernel, m.initrd]) {
    const p = path.join(outDir, f.file);
    if (!existsSync(p)) return { upToDate: false, reason: `${f.file} is missing` };
    const now = await fileInfo(p);
    if (now.size !== f.size || now.sha256 !== f.sha256) return { upToDate: false, reason: `${f.file} does not match the manifest` };
  }
  return { upToDate: true, manifest: m };
}
