// `xdpvm image build`: the Linux guest image (vmlinuz + initrd.img +
// manifest.json) made from Debian packages only. They are downloaded into a
// cache (apt-get download), unpacked into a staging tree (dpkg-deb -x), and
// never installed on the host. The image holds the distribution kernel with
// the virtio-net/uio/vfio modules, a static busybox, iperf3 and dpdk-testpmd
// with every library they load, and guest-images/linux/init, which runs the
// command given on the kernel command line between XDPVM-BEGIN/XDPVM-END.
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../../repo-root';
import { Apt, debFileName } from './apt';
import { readElf } from './elf';
import { elfClosure } from './elf-deps';
import { run } from './exec';
import { readImageSpec, SpecError, type ImageSpec } from './image-spec';
import { InitramfsLayout, writeInitramfs, type Compression } from './initramfs';
import { collectModules, formatModulesDep, type ModuleSet } from './kernel-modules';
import { libraryPackageFinder } from './library-packages';
import {
  builderSources,
  checkFreshness,
  computeInputHash,
  fileInfo,
  hashBuilderSources,
  MANIFEST_FILE,
  type ImageManifest,
  type ManifestPackage,
  type PackageRole,
} from './manifest';
import { guestPath } from './package-tree';
import { mb, secs, Staging } from './staging';

export type { ImageManifest } from './manifest';

export interface BuildLinuxImageOptions {
  /** Where vmlinuz, initrd.img and manifest.json go (default guest-images/out/linux). */
  outDir?: string;
  /** Downloaded .debs and the temporary staging tree (default guest-images/out/cache/linux). */
  cacheDir?: string;
  /** Rebuild even if the inputs did not change. */
  force?: boolean;
  /** Leave the staging tree (the unpacked packages) in the cache directory for inspection. */
  keepStaging?: boolean;
  progress(line: string): void;
}

export interface LinuxImage {
  kernel: string;
  initrd: string;
  manifest: ImageManifest;
  /** False when the image on disk was already built from the same inputs (nothing was done). */
  rebuilt: boolean;
}

/** Kernel options the image relies on, copied into the manifest. */
const KERNEL_CONFIG_KEYS = [
  'CONFIG_BLK_DEV_INITRD',
  'CONFIG_RD_ZSTD',
  'CONFIG_RD_GZIP',
  'CONFIG_DEVTMPFS',
  'CONFIG_HUGETLBFS',
  'CONFIG_VIRTIO_NET',
  'CONFIG_UIO_PCI_GENERIC',
  'CONFIG_VFIO_PCI',
  'CONFIG_VFIO_NOIOMMU',
  'CONFIG_MODULE_COMPRESS_NONE',
];

/** Files whose content decides the image besides the packages: the builder's code and guest-images/linux. */
export function linuxImageBuilderSources(root: string): string[] {
  const code = existsSync(path.join(root, 'src', 'guest-build', 'linux')) ? 'src/guest-build/linux' : path.relative(root, __dirname);
  return builderSources(root, [code, 'guest-images/linux']).filter((f) => !f.endsWith('.map') && !f.endsWith('.d.ts'));
}

function parseKernelConfig(text: string): Record<string, string> {
  const all = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^(CONFIG_\w+)=(.*)$/.exec(line);
    if (m) all.set(m[1]!, m[2]!);
  }
  return Object.fromEntries(KERNEL_CONFIG_KEYS.map((k) => [k, all.get(k) ?? 'n']));
}

export async function buildLinuxImage(opts: BuildLinuxImageOptions): Promise<LinuxImage> {
  const t0 = Date.now();
  const say = (line: string): void => opts.progress(line);
  const root = repoRoot();
  const spec = readImageSpec(path.join(root, 'guest-images', 'linux'));
  const outDir = path.resolve(opts.outDir ?? path.join(root, 'guest-images', 'out', 'linux'));
  const cacheDir = path.resolve(opts.cacheDir ?? path.join(root, 'guest-images', 'out', 'cache', 'linux'));
  const kernelOut = path.join(outDir, 'vmlinuz');
  const initrdOut = path.join(outDir, 'initrd.img');

  const builderHash = hashBuilderSources(root, linuxImageBuilderSources(root));
  const apt = new Apt(path.join(cacheDir, 'debs'), say);
  if (!opts.force) {
    const fresh = await checkFreshness(outDir, builderHash, apt);
    if (fresh.upToDate) {
      const m = fresh.manifest;
      say(
        `up to date: ${outDir} was built on ${m.builtAt} from the same inputs (${m.inputHash.slice(0, 12)}: ` +
          `${m.packages.length} package versions and the builder source unchanged); nothing to do ` +
          `[vmlinuz ${mb(m.kernel.size)}, initrd.img ${mb(m.initrd.size)}, checked in ${secs(Date.now() - t0)}]`,
      );
      return { kernel: kernelOut, initrd: initrdOut, manifest: m, rebuilt: false };
    }
    say(`building ${outDir}: ${fresh.reason}`);
  } else say(`building ${outDir}: forced`);

  const stagingDir = path.join(cacheDir, `staging-${process.pid}`);
  rmSync(stagingDir, { recursive: true, force: true });
  mkdirSync(stagingDir, { recursive: true });
  try {
    const staging = new Staging(apt, stagingDir, say);
    const built = await stageAndWrite(spec, staging, outDir, say);
    const packages = built.packages;
    const manifest: ImageManifest = {
      format: 1,
      inputHash: computeInputHash(builderHash, packages),
      builderHash,
      builtAt: new Date().toISOString(),
      buildSeconds: Math.round((Date.now() - t0) / 100) / 10,
      kernelRelease: built.modules.release,
      packages,
      modules: built.modules.modules.map((m) => m.rel),
      builtinModules: built.modules.builtin,
      elf: built.elf,
      kernelConfig: built.kernelConfig,
      kernel: await fileInfo(kernelOut),
      initrd: {
        ...(await fileInfo(initrdOut)),
        compression: built.compression,
        uncompressedSize: built.uncompressed,
        entries: built.entries,
      },
    };
    const tmp = path.join(outDir, `${MANIFEST_FILE}.tmp-${process.pid}`);
    writeFileSync(tmp, `${JSON.stringify(manifest, null, 2)}\n`);
    renameSync(tmp, path.join(outDir, MANIFEST_FILE));
    say(
      `built ${outDir} in ${secs(Date.now() - t0)}: vmlinuz ${mb(manifest.kernel.size)}, initrd.img ${mb(manifest.initrd.size)} ` +
        `(${built.compression}, ${mb(built.uncompressed)} unpacked, ${built.entries} entries), ${packages.length} packages, ` +
        `inputs ${manifest.inputHash.slice(0, 12)}`,
    );
    return { kernel: kernelOut, initrd: initrdOut, manifest, rebuilt: true };
  } finally {
    if (opts.keepStaging) say(`staging tree kept in ${stagingDir}`);
    else rmSync(stagingDir, { recursive: true, force: true });
  }
}

interface Built {
  packages: ManifestPackage[];
  modules: ModuleSet;
  elf: Record<string, string>;
  kernelConfig: Record<string, string>;
  compression: Compression;
  uncompressed: number;
  entries: number;
}

async function stageAndWrite(spec: ImageSpec, staging: Staging, outDir: string, say: (line: string) => void): Promise<Built> {
  const tree = staging.tree;

  // --- the kernel
  let t = Date.now();
  const meta = (await staging.apt.require([spec.kernel])).get(spec.kernel)!;
  const kernelPkg = meta.depends.find((d) => d.startsWith('linux-image-'));
  if (!kernelPkg) throw new SpecError(`${spec.kernel} ${meta.version} depends on no linux-image-* package`);
  await staging.add([kernelPkg], `the kernel (${spec.kernel} ${meta.version})`);
  const releases = [...tree.entries.entries()]
    .filter(([p, e]) => e.kind === 'dir' && e.pkg === kernelPkg && /^\/usr\/lib\/modules\/[^/]+$/.test(p))
    .map(([p]) => path.posix.basename(p));
  if (releases.length !== 1) throw new SpecError(`${kernelPkg} ships ${releases.length} module trees (${releases.join(', ')}), expected one`);
  const release = releases[0]!;
  const vmlinuz = tree.resolve(`/boot/vmlinuz-${release}`);
  const config = tree.resolve(`/boot/config-${release}`);
  if (!vmlinuz || !config) throw new SpecError(`${kernelPkg} has no /boot/vmlinuz-${release} or /boot/config-${release}`);
  const kernelConfig = parseKernelConfig(readFileSync(config.entry.host, 'utf8'));
  if (kernelConfig.CONFIG_BLK_DEV_INITRD !== 'y') throw new SpecError(`${release} cannot boot an initramfs (CONFIG_BLK_DEV_INITRD is not y)`);
  if (kernelConfig.CONFIG_RD_ZSTD !== 'y' && kernelConfig.CONFIG_RD_GZIP !== 'y') {
    throw new SpecError(`${release} supports neither a zstd nor a gzip initramfs`);
  }
  const compression: Compression = kernelConfig.CONFIG_RD_ZSTD === 'y' ? 'zstd' : 'gzip';
  const modules = await collectModules(tree, release, spec.modules);
  say(
    `kernel ${release}: vmlinuz ${mb(vmlinuz.entry.size)}, ${modules.modules.length} modules ` +
      `(${mb(modules.modules.reduce((s, m) => s + m.bytes.length, 0))}: ${modules.modules.map((m) => m.name).join(' ')})` +
      (modules.builtin.length ? `, built in: ${modules.builtin.join(' ')}` : '') +
      ` in ${secs(Date.now() - t)}`,
  );
  if (kernelConfig.CONFIG_VFIO_NOIOMMU !== 'y') {
    say(`note: ${release} is built without CONFIG_VFIO_NOIOMMU: xdpvm.bind=vfio needs a guest IOMMU; xdpvm.bind=uio needs none`);
  }

  // --- busybox
  t = Date.now();
  await staging.add([spec.busybox.pkg], 'busybox');
  const bb = tree.resolve(spec.busybox.path);
  if (!bb) throw new SpecError(`${spec.busybox.pkg} has no ${spec.busybox.path}`);
  const bbElf = readElf(readFileSync(bb.entry.host));
  if (bbElf.interp || bbElf.needed.length > 0) throw new SpecError(`${spec.busybox.path} from ${spec.busybox.pkg} is not statically linked`);
  // The static busybox from the package runs on the host as well: ask it for its applets.
  const applets = (await run(bb.entry.host, ['--list-full'])).split('\n').map((s) => s.trim()).filter(Boolean);
  say(`busybox: ${mb(bb.entry.size)}, ${applets.length} applets in ${secs(Date.now() - t)}`);

  // --- programs and their libraries
  t = Date.now();
  await staging.add(spec.elf.map((e) => e.pkg), 'the programs');
  const roots: string[] = [];
  for (const e of spec.elf) {
    for (const p of e.paths) {
      const hits = p.includes('*') ? tree.glob(p).filter((g) => tree.entries.get(g)?.pkg === e.pkg) : [p];
      if (hits.length === 0) throw new SpecError(`packages.txt: ${p} matches nothing in ${e.pkg}`);
      roots.push(...hits);
    }
  }
  const closure = await elfClosure(tree, roots, libraryPackageFinder(staging, spec.sonameHints));
  const elfBytes = [...closure.paths].reduce((s, p) => {
    const e = tree.entries.get(p);
    return s + (e?.kind === 'file' ? e.size : 0);
  }, 0);
  say(`programs: ${roots.length} roots, ${closure.objects.size} ELF objects (${mb(elfBytes)}) resolved in ${secs(Date.now() - t)}`);
  if (tree.conflicts.length > 0) say(`note: files shipped by two packages (first one kept): ${tree.conflicts.slice(0, 5).join('; ')}`);

  // --- the initramfs layout
  t = Date.now();
  const layout = new InitramfsLayout();
  for (const d of ['/proc', '/sys', '/dev', '/run', '/mnt', '/etc', '/usr/bin', '/usr/sbin', '/usr/lib', '/usr/lib64', '/var']) layout.dir(d);
  layout.dir('/tmp', 0o1777);
  layout.dir('/root', 0o700);
  for (const d of ['bin', 'sbin', 'lib', 'lib64']) layout.symlink(`/${d}`, `usr/${d}`);
  layout.symlink('/var/run', '../run');
  layout.charDevice('/dev/console', 5, 1, 0o600);
  layout.charDevice('/dev/null', 1, 3, 0o666);
  layout.file('/init', spec.init, 0o755);
  layout.data('/etc/passwd', 'root:x:0:0:root:/root:/bin/sh\n');
  layout.data('/etc/group', 'root:x:0:\n');

  const modBase = `/usr/lib/modules/${release}`;
  for (const m of modules.modules) layout.data(`${modBase}/${m.rel}`, m.bytes);
  layout.data(`${modBase}/modules.dep`, formatModulesDep(modules.dep));
  layout.data('/etc/xdpvm/modules.load', modules.modules.map((m) => `${m.rel}\n`).join(''));

  const bbPath = guestPath(spec.busybox.path);
  layout.file(bbPath, bb.entry.host, 0o755);
  for (const p of [...closure.paths].sort()) {
    const e = tree.entries.get(p)!;
    if (e.kind === 'file') layout.file(p, e.host, e.mode);
    else if (e.kind === 'symlink') layout.symlink(p, e.target);
  }
  for (const a of applets) {
    const p = guestPath(`/${a}`);
    if (p === bbPath || layout.has(p) || path.posix.dirname(p) === '/') continue;
    layout.symlink(p, bbPath);
  }

  // --- packages that went in
  const owners = new Map<string, PackageRole>();
  owners.set(kernelPkg, 'kernel');
  owners.set(spec.busybox.pkg, 'content');
  for (const p of closure.paths) {
    const pkg = tree.entries.get(p)!.pkg;
    if (!owners.has(pkg)) owners.set(pkg, spec.elf.some((e) => e.pkg === pkg) ? 'content' : 'library');
  }
  const packages: ManifestPackage[] = [
    { name: meta.name, version: meta.version, arch: meta.arch, role: 'kernel-meta', deb: debFileName(meta), sha256: meta.sha256 },
  ];
  for (const [name, role] of owners) {
    const s = staging.packages.get(name)!;
    packages.push({ name, version: s.pkg.version, arch: s.pkg.arch, role, deb: path.basename(s.deb), sha256: s.pkg.sha256 });
  }
  packages.sort((a, b) => a.name.localeCompare(b.name));
  const unused = [...staging.packages.keys()].filter((n) => !owners.has(n));
  layout.data(
    '/etc/xdpvm/packages',
    packages.map((p) => `${p.name} ${p.version} ${p.arch} ${p.role}\n`).join(''),
  );

  // --- write
  mkdirSync(outDir, { recursive: true });
  rmSync(path.join(outDir, MANIFEST_FILE), { force: true });
  const initrdTmp = path.join(outDir, `initrd.img.tmp-${process.pid}`);
  const kernelTmp = path.join(outDir, `vmlinuz.tmp-${process.pid}`);
  try {
    const stats = await writeInitramfs(layout, initrdTmp, compression);
    copyFileSync(vmlinuz.entry.host, kernelTmp);
    renameSync(initrdTmp, path.join(outDir, 'initrd.img'));
    renameSync(kernelTmp, path.join(outDir, 'vmlinuz'));
    say(
      `initramfs: ${stats.entries} entries, ${mb(stats.uncompressed)} -> ${mb(stats.compressed)} (${compression}) in ${secs(Date.now() - t)}` +
        (unused.length ? `; staged but not needed: ${unused.join(' ')}` : ''),
    );
    const elf: Record<string, string> = {};
    for (const [p, o] of [...closure.objects.entries()].sort(([a], [b]) => a.localeCompare(b))) elf[p] = o.pkg;
    elf[bbPath] = spec.busybox.pkg;
    return { packages, modules, elf, kernelConfig, compression, uncompressed: stats.uncompressed, entries: stats.entries };
  } finally {
    for (const f of [initrdTmp, kernelTmp]) if (existsSync(f)) unlinkSync(f);
  }
}
