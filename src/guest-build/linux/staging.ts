// The staging tree of a build: Debian packages fetched through the download
// cache, each unpacked into its own directory, all of them indexed in one
// PackageTree (the guest's view of their files).
import path from 'node:path';
import type { Apt, AptPackage } from './apt';
import { extractDeb, listTree } from './deb';
import { PackageTree } from './package-tree';

export interface StagedPackage {
  pkg: AptPackage;
  deb: string;
  dir: string;
  /** Bytes unpacked. */
  unpacked: number;
}

export const mb = (n: number): string => `${(n / 1e6).toFixed(1)} MB`;
export const secs = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

export class Staging {
  readonly tree = new PackageTree();
  readonly packages = new Map<string, StagedPackage>();

  constructor(
    readonly apt: Apt,
    readonly dir: string,
    private readonly progress: (line: string) => void,
  ) {}

  has(name: string): boolean {
    return this.packages.has(name);
  }

  /**
   * Fetches and unpacks the candidate versions of `names` not staged yet. With `optional`, names apt has
   * no candidate for (virtual packages) are skipped instead of failing. Returns the names newly staged.
   */
  async add(names: readonly string[], why: string, optional = false): Promise<string[]> {
    const want = [...new Set(names)].filter((n) => !this.packages.has(n));
    if (want.length === 0) return [];
    const meta = optional ? await this.apt.show(want) : await this.apt.require(want);
    if (meta.size === 0) return [];
    const t0 = Date.now();
    const { fetched, downloaded, bytes } = await this.apt.fetch([...meta.values()]);
    const t1 = Date.now();
    let unpacked = 0;
    for (const [name, { pkg, file }] of fetched) {
      const dir = path.join(this.dir, 'pkgs', name);
      await extractDeb(file, dir);
      const listing = listTree(dir);
      const size = listing.reduce((s, e) => s + (e.kind === 'file' ? e.size : 0), 0);
      unpacked += size;
      this.tree.add(name, dir, listing);
      this.packages.set(name, { pkg, deb: file, dir, unpacked: size });
    }
    const t2 = Date.now();
    const all = [...fetched.values()];
    const list = all.length <= 4 ? all.map((f) => `${f.pkg.name} ${f.pkg.version}`).join(', ') : `${all.length}: ${all.map((f) => f.pkg.name).join(' ')}`;
    this.progress(
      `packages for ${why}: ${list}; ` +
        (downloaded > 0 ? `downloaded ${downloaded} (${mb(bytes)}) in ${secs(t1 - t0)}` : 'all in the download cache') +
        `, unpacked ${mb(unpacked)} in ${secs(t2 - t1)}`,
    );
    return [...fetched.keys()];
  }
}
