// `xdpvm fuzz virtqueue [--cases N] [--seed S] [--json]`: random and
// adversarial rings against the device side; reports escaped exceptions and
// out-of-range accesses (both must be 0) and queues that stopped themselves.
import { GenericDeviceTarget } from '../fuzz/generic-device-target';
import type { FuzzTarget } from '../fuzz/fuzz-target';
import { VirtioNetTarget } from '../fuzz/virtio-net-target';
import { GuestUmemNetTarget } from '../fuzz/guest-umem-target';
import { runVirtqueueFuzz, type VirtqueueFuzzResult } from '../fuzz/virtqueue-fuzz';
import { parseFlags, UsageError } from './args';

export const FUZZ_USAGE = 'usage: xdpvm fuzz virtqueue [--cases N] [--seed S] [--target all|generic|virtio-net|guest-umem] [--json]';
const CHUNK = 10_000;

export function fuzzCommand(argv: readonly string[]): number {
  const [what, ...rest] = argv;
  if (what !== 'virtqueue') throw new UsageError(`unknown fuzz target '${what ?? ''}'\n${FUZZ_USAGE}`);
  const { flags } = parseFlags(rest, {
    cases: { type: 'number', integer: true, min: 1, max: 1e9 },
    seed: { type: 'number', integer: true, min: 0, max: 2 ** 32 - 1 },
    json: { type: 'boolean' },
    target: { type: 'enum', values: ['all', 'generic', 'virtio-net', 'guest-umem'] },
  });
  const which = (flags.target as string | undefined) ?? 'all';
  // Cases alternate between the targets chosen: the queue layer under a generic device, the virtio-net data path,
  // and that path with guest RAM as the UMEM against a simulated kernel.
  const targets: FuzzTarget[] = [];
  if (which === 'all' || which === 'generic') targets.push(new GenericDeviceTarget());
  if (which === 'all' || which === 'virtio-net') targets.push(new VirtioNetTarget());
  if (which === 'all' || which === 'guest-umem') targets.push(new GuestUmemNetTarget());
  const cases = (flags.cases as number | undefined) ?? 100_000;
  const seed = (flags.seed as number | undefined) ?? 1;
  const total: VirtqueueFuzzResult = { cases: 0, escaped: 0, outOfRange: 0, broken: 0, reasons: {}, badChains: 0, canaryDamaged: 0, harnessErrors: 0 };
  const t0 = Date.now();
  for (let first = 0; first < cases; first += CHUNK) {
    const target = targets[(first / CHUNK) % targets.length]!;
    const r = runVirtqueueFuzz({ cases: Math.min(CHUNK, cases - first), seed, firstCase: first, target });
    total.cases += r.cases;
    total.escaped += r.escaped;
    total.outOfRange += r.outOfRange;
    total.broken += r.broken;
    total.badChains += r.badChains;
    total.canaryDamaged += r.canaryDamaged;
    total.harnessErrors += r.harnessErrors;
    for (const [k, v] of Object.entries(r.reasons)) total.reasons[k] = (total.reasons[k] ?? 0) + v;
    if (r.firstEscape && !total.firstEscape) total.firstEscape = r.firstEscape;
    process.stderr.write(`\rfuzz virtqueue: ${total.cases}/${cases} cases, ${total.escaped} escaped, ${total.broken} queues stopped (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  }
  process.stderr.write('\n');
  const reasons = Object.entries(total.reasons).sort((a, b) => b[1] - a[1]);
  process.stderr.write(`seed ${seed}: ${total.cases} cases, escaped ${total.escaped}, out-of-range accesses ${total.canaryDamaged + total.badChains} ` +
    `(canary damage ${total.canaryDamaged}, bad chains ${total.badChains}), accesses refused by the accessor ${total.outOfRange}, queues stopped ${total.broken}\n`);
  process.stderr.write(`stop reasons: ${reasons.map(([k, v]) => `${k} ${v}`).join(', ')}\n`);
  if (total.firstEscape) process.stderr.write(`first escape: ${JSON.stringify(total.firstEscape)}\n`);
  // outOfRange: accesses that landed outside guest memory (canaries) or chains the queue let through
  // that point outside it. What the accessor refused is `rejected`: those never touched memory.
  const summary = {
    cases: total.cases,
    escaped: total.escaped,
    outOfRange: total.canaryDamaged + total.badChains,
    broken: total.broken,
    rejected: total.outOfRange,
    seed,
  };
  if (flags.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
  return total.escaped === 0 && total.canaryDamaged === 0 && total.badChains === 0 ? 0 : 1;
}
