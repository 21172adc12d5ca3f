// Strict command-line flag parsing: unknown flags, missing values and values
// of the wrong form are errors that name the flag.
export class UsageError extends Error {}

export interface FlagSpec {
  /** 'string' | 'number' | 'boolean' | 'enum' */
  type: 'string' | 'number' | 'boolean' | 'enum';
  values?: readonly string[];
  min?: number;
  max?: number;
  integer?: boolean;
}

export type Flags = Record<string, string | number | boolean | undefined>;

/** Parses `--name value` / `--name=value` / `--flag` into a record; the rest (after `--`) is returned as `rest`. */
export function parseFlags(argv: readonly string[], spec: Record<string, FlagSpec>): { flags: Flags; rest: string[] } {
  const flags: Flags = {};
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      i++;
      break;
    }
    if (!a.startsWith('--')) throw new UsageError(`unexpected argument '${a}'`);
    const eq = a.indexOf('=');
    const name = a.slice(2, eq > 0 ? eq : undefined);
    const s = spec[name];
    if (!s) throw new UsageError(`unknown option --${name}`);
    if (name in flags) throw new UsageError(`--${name} given twice`);
    if (s.type === 'boolean') {
      if (eq > 0) throw new UsageError(`--${name} takes no value`);
      flags[name] = true;
      continue;
    }
    let v: string | undefined = eq > 0 ? a.slice(eq + 1) : argv[++i];
    if (v === undefined || (eq < 0 && v.startsWith('--'))) throw new UsageError(`--${name} needs a value`);
    if (s.type === 'enum') {
      if (!s.values!.includes(v)) throw new UsageError(`--${name} must be one of ${s.values!.join(', ')} (got '${v}')`);
      flags[name] = v;
    } else if (s.type === 'number') {
      const n = Number(v);
      if (v.trim() === '' || !Number.isFinite(n)) throw new UsageError(`--${name} must be a number (got '${v}')`);
      if (s.integer && !Number.isInteger(n)) throw new UsageError(`--${name} must be a whole number (got '${v}')`);
      if (s.min !== undefined && n < s.min) throw new UsageError(`--${name} must be at least ${s.min} (got ${n})`);
      if (s.max !== undefined && n > s.max) throw new UsageError(`--${name} must be at most ${s.max} (got ${n})`);
      flags[name] = n;
    } else {
      flags[name] = v;
      v = undefined;
    }
  }
  return { flags, rest: argv.slice(i) };
}

/** The flags every benchmark takes: the run's length and count, and where and how the result goes. */
export const BENCH_FLAGS: Readonly<Record<string, FlagSpec>> = {
  seconds: { type: 'number', min: 0.2, max: 600 },
  runs: { type: 'number', integer: true, min: 1, max: 100 },
  json: { type: 'boolean' },
  out: { type: 'string' },
  baseline: { type: 'string' },
  threshold: { type: 'number', min: 0, max: 1 },
};

/** The output flags every benchmark takes: --out, --json, --baseline, --threshold. */
export function publishFlags(flags: Flags): { out?: string; json?: boolean; baseline?: string; threshold?: number } {
  return {
    ...(typeof flags.out === 'string' ? { out: flags.out } : {}),
    json: flags.json === true,
    ...(typeof flags.baseline === 'string' ? { baseline: flags.baseline } : {}),
    ...(typeof flags.threshold === 'number' ? { threshold: flags.threshold } : {}),
  };
}
