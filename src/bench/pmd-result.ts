// The PMD test guest's result line (guest-images/pmd/README.md, "Output"):
// the last console line, `XDPVM-PMD-RESULT {json}`. The guest is as
// hostile as any other input: the line is checked field by field.

export interface PmdQueueResult {
  queue: number;
  tx_packets: number;
  tx_bytes: number;
  rx_packets: number;
  rx_bytes: number;
  tx_dropped: number;
  rx_errors: number;
  tx_kicks: number;
  rx_kicks: number;
  kicks_suppressed: number;
  /** Used entries the device wrote to this pair's RX ring (consumed or not); 0 for a pair VQ_PAIRS_SET left off. */
  rx_used: number;
}

export interface PmdResult {
  mode: string;
  ring: string;
  event_idx: boolean;
  queues: number;
  vcpus: number;
  size: number;
  tsc_khz: number;
  boot_cycles: number;
  first_tx_cycles: number;
  cycles: number;
  seconds: number;
  timed_out: boolean;
  /** Pairs the guest enabled with VQ_PAIRS_SET (active=). */
  active: number;
  /** intx=: whether the ISR queue bit came. */
  intx_seen?: boolean;
  tx_packets: number;
  tx_bytes: number;
  rx_packets: number;
  rx_bytes: number;
  per_queue: PmdQueueResult[];
}

const NUMBERS = ['queues', 'active', 'vcpus', 'size', 'tsc_khz', 'boot_cycles', 'first_tx_cycles', 'cycles', 'seconds', 'tx_packets', 'tx_bytes', 'rx_packets', 'rx_bytes'] as const;
const QUEUE_NUMBERS = ['queue', 'tx_packets', 'tx_bytes', 'rx_packets', 'rx_bytes', 'tx_dropped', 'rx_errors', 'tx_kicks', 'rx_kicks', 'kicks_suppressed', 'rx_used'] as const;

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0;
}

/** The last result line in `consoleText`, or undefined when there is none or it is malformed. */
export function parsePmdResult(consoleText: string): PmdResult | undefined {
  const lines = [...consoleText.matchAll(/^XDPVM-PMD-RESULT (\{.*\})\r?$/gm)];
  const last = lines[lines.length - 1];
  if (!last) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(last[1]!);
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null) return undefined;
  const o = v as Record<string, unknown>;
  if (typeof o.mode !== 'string' || typeof o.ring !== 'string' || typeof o.event_idx !== 'boolean' || typeof o.timed_out !== 'boolean') return undefined;
  if (o.intx_seen !== undefined && typeof o.intx_seen !== 'boolean') return undefined;
  if (!NUMBERS.every((k) => isCount(o[k]))) return undefined;
  if (!Array.isArray(o.per_queue)) return undefined;
  for (const q of o.per_queue as unknown[]) {
    if (typeof q !== 'object' || q === null) return undefined;
    if (!QUEUE_NUMBERS.every((k) => isCount((q as Record<string, unknown>)[k]))) return undefined;
  }
  return o as unknown as PmdResult;
}

/** Seconds from the guest's entry to its first frame on a TX ring (guest TSC), if it knows its TSC rate. */
export function bootToFirstTxSeconds(r: PmdResult): number | undefined {
  return r.tsc_khz > 0 && r.first_tx_cycles > 0 ? r.first_tx_cycles / (r.tsc_khz * 1000) : undefined;
}
