// Which Debian package ships a shared library, found without a Contents
// index: Debian names library packages after the soname (policy 8.1:
// libfoo.so.1 -> libfoo1, libfoo2.so.3 -> libfoo2-3), a short hints file
// covers the libraries that break that rule, and dpkg-shlibdeps guarantees
// that a binary's libraries come from its own package's Depends. Tried in
// that order, staging packages until the library turns up.
import type { MissingLibrary, MoreLibraries } from './elf-deps';
import type { Staging } from './staging';

/** Package names Debian's naming policy gives a library's soname. */
export function sonamePackageNames(soname: string): string[] {
  const m = /^(.+?)\.so\.?(.*)$/.exec(soname);
  if (!m) return [];
  const stem = m[1]!.toLowerCase().replace(/_/g, '-');
  const ver = m[2]!;
  if (!ver) return [stem];
  const major = ver.split('.')[0]!;
  const join = (v: string): string => (/\d$/.test(stem) ? `${stem}-${v}` : `${stem}${v}`);
  return [...new Set([join(ver), join(major)])];
}

/** "soname package" lines; '#' starts a comment. */
export function parseSonameHints(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    if (!line) continue;
    const [soname, ...pkgs] = line.split(/\s+/);
    if (soname && pkgs.length > 0) out.set(soname, pkgs);
  }
  return out;
}

/** Packages that never hold a runtime library worth searching. */
const NOT_LIBRARY = /(-dev|-doc|-dbg|-bin|-utils|-tools|-common|-data)$|^(python3|perl|debconf|lsb-base|pci\.ids|hwdata|procps|pciutils)/;

/**
 * A MoreLibraries callback (see elf-deps) backed by a Staging. For each missing library it first stages
 * the packages named after it (hints, then Debian's naming policy); if that does not turn it up, every
 * library-looking package the needing package depends on. Each batch is one apt-get download.
 */
export function libraryPackageFinder(staging: Staging, hints: Map<string, string[]>): MoreLibraries {
  const named = new Set<string>(); // sonames whose name-based guesses were staged already
  const fellBack = new Set<string>(); // packages whose Depends were all staged already
  const summary = (missing: readonly MissingLibrary[]): string => {
    const s = [...new Set(missing.map((m) => m.soname))];
    return s.length <= 4 ? s.join(', ') : `${s.slice(0, 4).join(', ')} and ${s.length - 4} more libraries`;
  };
  return async (missing) => {
    const guesses = new Set<string>();
    const fresh = missing.filter((m) => !named.has(m.soname));
    for (const m of fresh) {
      named.add(m.soname);
      for (const n of [...(hints.get(m.soname) ?? []), ...sonamePackageNames(m.soname)]) if (!staging.has(n)) guesses.add(n);
    }
    if (guesses.size > 0 && (await staging.add([...guesses], summary(fresh), true)).length > 0) return true;
    const rest = new Set<string>();
    const owners = [...new Set(missing.map((m) => m.pkg))].filter((p) => !fellBack.has(p));
    for (const owner of owners) {
      fellBack.add(owner);
      for (const n of staging.packages.get(owner)?.pkg.depends ?? []) if (!staging.has(n) && !NOT_LIBRARY.test(n)) rest.add(n);
    }
    if (rest.size > 0) {
      const why = `${summary(missing)}, by trying all Depends of ${owners.join(', ')}`;
      if ((await staging.add([...rest], why, true)).length > 0) return true;
    }
    return false;
  };
}
