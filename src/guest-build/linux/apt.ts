// Debian packages for the guest image: what the archive offers (apt-cache),
// and a download cache of .deb files (apt-get download) checked against the
// archive's SHA256. Nothing is installed on the host.
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, renameSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import { run } from './exec';

export interface AptPackage {
  name: string;
  version: string;
  arch: string;
  /** SHA256 of the .deb, from the archive index. */
  sha256: string;
  /** Size of the .deb in bytes. */
  size: number;
  /** First alternative of each Depends and Pre-Depends entry, names only. */
  depends: string[];
}

/** The file name apt-get download gives a package: name_version_arch.deb with ':' in the version escaped. */
export function debFileName(p: Pick<AptPackage, 'name' | 'version' | 'arch'>): string {
  return `${p.name}_${p.version.replace(/:/g, '%3a')}_${p.arch}.deb`;
}

/** "libc6 (>= 2.34), libssl3 | libssl1.1, python3:any" -> ["libc6", "libssl3", "python3"]. */
export function parseDepends(field: string): string[] {
  const out: string[] = [];
  for (const group of field.split(',')) {
    const first = group.split('|')[0]!.trim();
    const name = first.replace(/\(.*?\)/g, '').replace(/\[.*?\]/g, '').replace(/<.*?>/g, '').trim().replace(/:\w+$/, '');
    if (name && !out.includes(name)) out.push(name);
  }
  return out;
}

/** Parses deb822 records as printed by `apt-cache show`. */
export function parseAptRecords(text: string): AptPackage[] {
  const out: AptPackage[] = [];
  for (const block of text.split(/\n\s*\n/)) {
    const fields = new Map<string, string>();
    let key = '';
    for (const line of block.split('\n')) {
      if (/^\s/.test(line) && key) fields.set(key, `${fields.get(key) ?? ''}\n${line.trim()}`);
      else {
        const m = /^([\w-]+):\s?(.*)$/.exec(line);
        if (m) {
          key = m[1]!;
          fields.set(key, m[2]!);
        }
      }
    }
    const name = fields.get('Package');
    const version = fields.get('Version');
    if (!name || !version) continue;
    const deps = [fields.get('Pre-Depends'), fields.get('Depends')].filter((x): x is string => !!x).join(',');
    out.push({
      name,
      version,
      arch: fields.get('Architecture') ?? 'amd64',
      sha256: fields.get('SHA256') ?? '',
      size: Number(fields.get('Size') ?? 0),
      depends: deps ? parseDepends(deps) : [],
    });
  }
  return out;
}

export function sha256File(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(file)
      .on('data', (d) => h.update(d))
      .on('error', reject)
      .on('end', () => resolve(h.digest('hex')));
  });
}

const isRoot = (): boolean => process.getuid?.() === 0;
const aptEnv = (): NodeJS.ProcessEnv => ({ ...process.env, DEBIAN_FRONTEND: 'noninteractive', LC_ALL: 'C' });

/**
 * The archive (through apt-cache/apt-get) plus a directory of downloaded .debs.
 * Package lists are refreshed (apt-get update, root only) at most once per instance,
 * when a package is unknown or a download fails.
 */
export class Apt {
  private readonly known = new Map<string, AptPackage>();
  private updated = false;

  constructor(
    readonly debDir: string,
    private readonly progress: (line: string) => void,
  ) {
    mkdirSync(debDir, { recursive: true });
  }

  /** Candidate versions of `names` (apt-cache show --no-all-versions). Names with no candidate (virtual, unknown) are left out. */
  async show(names: readonly string[]): Promise<Map<string, AptPackage>> {
    const want = [...new Set(names)].filter((n) => !this.known.has(n));
    if (want.length > 0) {
      let found = await this.showRaw(want);
      if (found.size < want.length && !this.updated && isRoot() && (await this.listsLookEmpty(want, found))) {
        await this.update();
        found = await this.showRaw(want);
      }
      for (const [n, p] of found) this.known.set(n, p);
    }
    const out = new Map<string, AptPackage>();
    for (const n of names) {
      const p = this.known.get(n);
      if (p) out.set(n, p);
    }
    return out;
  }

  /** Like show(), but every name must have a candidate. */
  async require(names: readonly string[]): Promise<Map<string, AptPackage>> {
    const found = await this.show(names);
    const missing = names.filter((n) => !found.has(n));
    if (missing.length > 0) {
      throw new Error(
        `Debian package(s) not available from apt: ${missing.join(', ')}` +
          (isRoot() ? '' : ' (package lists may be missing: run `apt-get update` as root)'),
      );
    }
    return found;
  }

  /**
   * Local .deb files of `pkgs`, downloading the ones not yet in the cache (or whose SHA256 does not match).
   * If a download fails (lists older than the archive), the lists are refreshed once and the new candidate
   * versions are fetched instead: `fetched` tells which version each name ended up with.
   */
  async fetch(pkgs: readonly AptPackage[]): Promise<{ fetched: Map<string, { pkg: AptPackage; file: string }>; downloaded: number; bytes: number }> {
    const fetched = new Map<string, { pkg: AptPackage; file: string }>();
    let missing: AptPackage[] = [];
    for (const p of pkgs) {
      const file = path.join(this.debDir, debFileName(p));
      if (existsSync(file) && (!p.sha256 || (await sha256File(file)) === p.sha256)) fetched.set(p.name, { pkg: p, file });
      else missing.push(p);
    }
    let bytes = 0;
    const downloaded = missing.length;
    if (missing.length > 0) {
      try {
        await this.download(missing);
      } catch (e) {
        if (this.updated || !isRoot()) throw e;
        this.progress(`apt: download failed (${(e as Error).message.split('\n')[0]}), refreshing package lists once`);
        await this.update();
        missing = [...(await this.require(missing.map((p) => p.name))).values()];
        await this.download(missing);
      }
      for (const p of missing) {
        const file = path.join(this.debDir, debFileName(p));
        if (!existsSync(file)) throw new Error(`apt-get download did not produce ${debFileName(p)}`);
        const sum = await sha256File(file);
        if (p.sha256 && sum !== p.sha256) {
          unlinkSync(file);
          throw new Error(`${debFileName(p)}: SHA256 ${sum} does not match the archive's ${p.sha256}`);
        }
        bytes += p.size;
        fetched.set(p.name, { pkg: p, file });
      }
    }
    return { fetched, downloaded, bytes };
  }

  private async download(pkgs: readonly AptPackage[]): Promise<void> {
    const args = ['download', '-q'];
    // As root, apt drops to the _apt user for downloads, which cannot write into a root-owned cache.
    if (isRoot()) args.push('-o', 'APT::Sandbox::User=root');
    args.push(...pkgs.map((p) => `${p.name}=${p.version}`));
    const tmp = path.join(this.debDir, `.partial-${process.pid}`);
    mkdirSync(tmp, { recursive: true });
    try {
      await run('apt-get', args, { cwd: tmp, env: aptEnv() });
      for (const p of pkgs) {
        const name = debFileName(p);
        if (existsSync(path.join(tmp, name))) renameSync(path.join(tmp, name), path.join(this.debDir, name));
      }
    } finally {
      await run('rm', ['-rf', tmp]);
    }
  }

  private async showRaw(names: readonly string[]): Promise<Map<string, AptPackage>> {
    const out = new Map<string, AptPackage>();
    const add = (text: string): void => {
      for (const p of parseAptRecords(text)) if (!out.has(p.name)) out.set(p.name, p);
    };
    try {
      add(await run('apt-cache', ['show', '--no-all-versions', ...names], { env: aptEnv() }));
    } catch {
      // One unknown or purely virtual name fails the whole call: ask one by one.
      for (const n of names) {
        try {
          add(await run('apt-cache', ['show', '--no-all-versions', n], { env: aptEnv() }));
        } catch {
          /* no candidate */
        }
      }
    }
    return out;
  }

  /** True when none of the names is known to apt at all, which is what missing package lists look like. */
  private async listsLookEmpty(want: readonly string[], found: Map<string, AptPackage>): Promise<boolean> {
    if (found.size > 0) return false;
    const policy = await run('apt-cache', ['policy', ...want], { env: aptEnv() }).catch(() => '');
    return !/Candidate: (?!\(none\))/.test(policy);
  }

  private async update(): Promise<void> {
    this.updated = true;
    const t0 = Date.now();
    this.progress('apt: package lists missing or stale, running apt-get update');
    await run('apt-get', ['update', '-q'], { env: aptEnv() });
    this.known.clear();
    this.progress(`apt: apt-get update done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }
}
