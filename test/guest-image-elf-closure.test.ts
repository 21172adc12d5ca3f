// Library closure resolution: for a program in a package tree, every
// DT_NEEDED library and the dynamic loader are found the way ld.so would
// (merged /usr, symlinks followed, RUNPATH with $ORIGIN), and a library that
// is missing is asked for from the callback until it turns up.
import { lstatSync, readlinkSync, realpathSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { DebEntry } from '../src/guest-build/linux/deb';
import { elfClosure, searchDirs, type MissingLibrary } from '../src/guest-build/linux/elf-deps';
import { sonamePackageNames } from '../src/guest-build/linux/library-packages';
import { guestPath, PackageTree } from '../src/guest-build/linux/package-tree';

/** A listing of host paths (as a package would ship them), following the host's symlinks to their files. */
function hostListing(paths: string[]): DebEntry[] {
  const out: DebEntry[] = [];
  const seen = new Set<string>();
  const add = (p: string): void => {
    if (seen.has(p)) return;
    seen.add(p);
    const st = lstatSync(p);
    if (st.isSymbolicLink()) {
      out.push({ path: p, kind: 'symlink', target: readlinkSync(p) });
      add(realpathSync(p));
    } else out.push({ path: p, kind: 'file', size: st.size, mode: st.mode & 0o7777 });
  };
  paths.forEach(add);
  return out;
}

const LIBS = ['/lib/x86_64-linux-gnu/libc.so.6', '/lib/x86_64-linux-gnu/libselinux.so.1', '/lib/x86_64-linux-gnu/libpcre2-8.so.0'];
const LOADER = '/lib64/ld-linux-x86-64.so.2';

test('merged /usr: /lib, /bin, /lib64 are seen under /usr', () => {
  assert.is(guestPath('/lib/x86_64-linux-gnu/libc.so.6'), '/usr/lib/x86_64-linux-gnu/libc.so.6');
  assert.is(guestPath('/bin/busybox'), '/usr/bin/busybox');
  assert.is(guestPath('/lib64/../lib64/x'), '/usr/lib64/x');
  assert.is(guestPath('/etc/passwd'), '/etc/passwd');
});

test('/bin/ls: its libraries and the loader, through their symlinks', async () => {
  const tree = new PackageTree();
  tree.add('coreutils', '/', hostListing(['/bin/ls']));
  tree.add('libs', '/', hostListing([...LIBS, LOADER]));
  const asked: MissingLibrary[] = [];
  const c = await elfClosure(tree, ['/usr/bin/ls'], async (m) => {
    asked.push(...m);
    return false;
  });
  assert.is(asked.length, 0, JSON.stringify(asked));
  const ls = c.objects.get('/usr/bin/ls')!;
  assert.ok(ls, [...c.objects.keys()].join(' '));
  assert.is(ls.interp, '/lib64/ld-linux-x86-64.so.2');
  assert.is(ls.needed.get('libc.so.6'), '/usr/lib/x86_64-linux-gnu/libc.so.6');
  assert.ok(c.paths.has('/usr/lib64/ld-linux-x86-64.so.2'), 'the loader symlink is copied');
  assert.ok(c.paths.has(guestPath(realpathSync(LOADER))), 'and the file it points to');
  // libselinux needs libpcre2-8: the closure is transitive.
  assert.ok([...c.objects.keys()].some((k) => k.includes('libpcre2-8')), [...c.objects.keys()].join(' '));
});

test('a missing library is asked for, staged, and the lookup retried', async () => {
  const tree = new PackageTree();
  tree.add('coreutils', '/', hostListing(['/bin/ls']));
  tree.add('libc6', '/', hostListing(['/lib/x86_64-linux-gnu/libc.so.6', LOADER]));
  const rounds: string[][] = [];
  const c = await elfClosure(tree, ['/bin/ls'], async (missing) => {
    rounds.push(missing.map((m) => m.soname));
    if (missing.some((m) => m.soname === 'libselinux.so.1')) {
      tree.add('libselinux1', '/', hostListing(['/lib/x86_64-linux-gnu/libselinux.so.1']));
      return true;
    }
    if (missing.some((m) => m.soname === 'libpcre2-8.so.0')) {
      tree.add('libpcre2-8-0', '/', hostListing(['/lib/x86_64-linux-gnu/libpcre2-8.so.0']));
      return true;
    }
    return false;
  });
  assert.equal(rounds, [['libselinux.so.1'], ['libpcre2-8.so.0']]);
  assert.is(c.objects.get('/usr/bin/ls')!.pkg, 'coreutils');
});

test('nothing more to stage: the error names the library and who needs it', async () => {
  const tree = new PackageTree();
  tree.add('coreutils', '/', hostListing(['/bin/ls']));
  try {
    await elfClosure(tree, ['/bin/ls'], async () => false);
    assert.unreachable('should throw');
  } catch (e) {
    assert.match((e as Error).message, /libc\.so\.6 \(needed by \/usr\/bin\/ls, package coreutils\)/);
  }
});

test('RUNPATH with $ORIGIN comes before the default directories', () => {
  const dirs = searchDirs({ rpath: ['/ignored'], runpath: ['$ORIGIN/../lib/dpdk'] }, '/usr/bin/x');
  assert.equal(dirs.slice(0, 2), ['/usr/bin/../lib/dpdk', '/lib/x86_64-linux-gnu']);
  assert.is(searchDirs({ rpath: ['/r'], runpath: [] }, '/usr/bin/x')[0], '/r');
});

test('Debian library package names from sonames', () => {
  assert.ok(sonamePackageNames('libc.so.6').includes('libc6'));
  assert.ok(sonamePackageNames('librte_eal.so.23').includes('librte-eal23'));
  assert.ok(sonamePackageNames('libpcap.so.0.8').includes('libpcap0.8'));
  assert.ok(sonamePackageNames('libnl-3.so.200').includes('libnl-3-200'));
  assert.ok(sonamePackageNames('liblz4.so.1').includes('liblz4-1'));
});

test.run();
