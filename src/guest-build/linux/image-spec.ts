// The description of the guest image in guest-images/linux/: packages.txt
// (what goes in), modules.txt (kernel modules), soname-packages.txt (library
// package hints) and the init script.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseSonameHints } from './library-packages';

export interface ImageSpec {
  dir: string;
  /** Kernel metapackage, e.g. linux-image-amd64. */
  kernel: string;
  busybox: { pkg: string; path: string };
  /** ELF programs/libraries (paths may contain '*'), by package. */
  elf: { pkg: string; paths: string[] }[];
  modules: string[];
  sonameHints: Map<string, string[]>;
  /** Host path of the init script. */
  init: string;
}

export class SpecError extends Error {
  override name = 'SpecError';
}

const lines = (text: string): string[][] =>
  text
    .split('\n')
    .map((l) => l.replace(/#.*/, '').trim())
    .filter(Boolean)
    .map((l) => l.split(/\s+/));

export function parsePackagesFile(text: string, file = 'packages.txt'): Pick<ImageSpec, 'kernel' | 'busybox' | 'elf'> {
  let kernel: string | undefined;
  let busybox: ImageSpec['busybox'] | undefined;
  const elf: ImageSpec['elf'] = [];
  for (const [kind, pkg, ...rest] of lines(text)) {
    if (!pkg) throw new SpecError(`${file}: "${kind}" without a package`);
    switch (kind) {
      case 'kernel':
        if (kernel) throw new SpecError(`${file}: two kernel lines`);
        kernel = pkg;
        break;
      case 'busybox':
        if (rest.length !== 1) throw new SpecError(`${file}: busybox needs a package and one path`);
        busybox = { pkg, path: rest[0]! };
        break;
      case 'elf':
        if (rest.length === 0) throw new SpecError(`${file}: elf ${pkg} needs at least one path`);
        elf.push({ pkg, paths: rest });
        break;
      default:
        throw new SpecError(`${file}: unknown entry kind "${kind}" (kernel, busybox, elf)`);
    }
  }
  if (!kernel) throw new SpecError(`${file}: no kernel line`);
  if (!busybox) throw new SpecError(`${file}: no busybox line`);
  return { kernel, busybox, elf };
}

export function readImageSpec(dir: string): ImageSpec {
  const need = (name: string): string => {
    const f = path.join(dir, name);
    if (!existsSync(f)) throw new SpecError(`${f} is missing`);
    return f;
  };
  const pk = parsePackagesFile(readFileSync(need('packages.txt'), 'utf8'));
  const modules = lines(readFileSync(need('modules.txt'), 'utf8')).map((l) => l[0]!);
  const sonameHints = parseSonameHints(readFileSync(need('soname-packages.txt'), 'utf8'));
  return { dir, ...pk, modules, sonameHints, init: need('init') };
}
