// Installs what xdpvm needs on a fresh Debian 12 machine and reuses what is
// already there: Debian packages (apt), npm packages, the native addons and
// the TypeScript build. Prints what it does; silent when nothing is to do.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

// Debian packages: [command or file that proves it is there, package].
const DEBIAN = [
  ['/usr/sbin/ip', 'iproute2'],
  ['/usr/bin/setpriv', 'util-linux'],
  ['/usr/bin/gcc', 'gcc'],
  ['/usr/bin/make', 'make'],
  // The guest image builder unpacks and packs with these.
  ['/usr/bin/zstd', 'zstd'],
  ['/usr/bin/xz', 'xz-utils'],
  ['/usr/bin/cpio', 'cpio'],
];

function run(cmd, args, opts = {}) {
  process.stdout.write(`[setup] ${cmd} ${args.join(' ')}\n`);
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: root, ...opts });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.status ?? r.signal})`);
}

export function ensureDebian(list) {
  const missing = list.filter(([probe]) => !existsSync(probe)).map(([, pkg]) => pkg);
  if (missing.length === 0) return;
  if (process.getuid?.() !== 0) throw new Error(`missing Debian packages (run as root to install): ${missing.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  run('apt-get', ['update', '-q'], { env });
  run('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...new Set(missing)], { env });
}

function newestMtime(dir, exts) {
  let t = 0;
  if (!existsSync(dir)) return t;
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'dist' || name === 'build') continue;
    const p = path.join(dir, name);
    const st = statSync(p);
    if (st.isDirectory()) t = Math.max(t, newestMtime(p, exts));
    else if (exts.some((e) => name.endsWith(e))) t = Math.max(t, st.mtimeMs);
  }
  return t;
}

function mtime(p) {
  return existsSync(p) ? statSync(p).mtimeMs : 0;
}

/** What scripts/kvm-in-tcg.sh needs: QEMU, a Debian kernel with its modules, a static busybox, cpio. */
export function ensureKvmHarness() {
  const kernels = existsSync('/boot') ? readdirSync('/boot').filter((n) => n.startsWith('vmlinuz-')) : [];
  const list = [
    ['/usr/bin/qemu-system-x86_64', 'qemu-system-x86'],
    ['/usr/bin/cpio', 'cpio'],
    ['/bin/busybox', 'busybox-static'],
  ];
  if (kernels.length === 0) list.push(['/nonexistent-kernel', 'linux-image-amd64']);
  ensureDebian(list);
  // The initramfs needs a static busybox; Debian's plain `busybox` package is dynamic.
  if (spawnSync('ldd', ['/bin/busybox'], { encoding: 'utf8' }).stdout.includes('=>')) ensureDebian([['/nonexistent-static-busybox', 'busybox-static']]);
}

export function ensure({ forTests = false } = {}) {
  ensureDebian(DEBIAN);
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  if (!existsSync(path.join(root, 'node_modules', 'uvu')) || !existsSync(path.join(root, 'node_modules', 'typescript'))) {
    run(npm, [existsSync(path.join(root, 'package-lock.json')) ? 'ci' : 'install', '--no-audit', '--no-fund']);
  }
  const addons = ['sys', 'kvm', 'xsk', 'raw_loop'].map((n) => path.join(root, 'build', 'Release', `${n}.node`));
  const nativeSrc = Math.max(newestMtime(path.join(root, 'native'), ['.cc', '.h', '.c']), mtime(path.join(root, 'binding.gyp')));
  if (addons.some((a) => mtime(a) < nativeSrc)) run(process.execPath, ['scripts/build-native.mjs']);
  run(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-b'], { stdio: forTests ? 'inherit' : 'inherit' });
  // The PMD test guest (rebuilt only when its sources change). Built here, on the host: the
  // nested-KVM TCG harness sees the checkout read-only.
  run('sh', [path.join(root, 'guest-images', 'pmd', 'build.sh')]);
}

if (import.meta.url === `file://${process.argv[1]}`) ensure();
