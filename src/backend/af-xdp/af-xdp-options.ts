// `-netdev af-xdp,...` options, spelled and checked as QEMU 8.2 does
// (qapi/net.json NetdevAFXDPOptions; map-path and map-start-index as QEMU
// 10.1 added them): every error names the option.

export interface AfXdpOptions {
  id: string;
  ifname: string;
  /** undefined: try native, fall back to skb. */
  mode?: 'native' | 'skb';
  forceCopy: boolean;
  queues: number;
  startQueue: number;
  inhibit: boolean;
  sockFds?: number[];
  /** With inhibit=on: a pinned XSKMAP (bpffs path) to put our own sockets into. */
  mapPath?: string;
  /** Slot of queue 0 in the map at mapPath (queue i goes to mapStartIndex + i); 0 unless given. */
  mapStartIndex?: number;
  /**
   * guest-umem=: register guest RAM itself as the UMEM (no copy between guest and socket). auto: when the
   * VMM can give its RAM and the registration works, else the copy path (one message); on: or fail; off: copy.
   * Unset: off (the copy path measured faster for plain send and receive; guest-umem wins forwarding).
   */
  guestUmem?: GuestUmemMode;
  /**
   * multi-buffer=: frames larger than one UMEM frame as chains of descriptors (XDP_USE_SG, Linux >= 6.6). auto:
   * where the kernel takes it, else one message and such frames dropped and counted; on: or fail; off: never.
   * Unset: auto.
   */
  multiBuffer?: MultiBufferMode;
}

export type GuestUmemMode = 'auto' | 'on' | 'off';
export type MultiBufferMode = 'auto' | 'on' | 'off';

export class OptionError extends Error {}

const KEYS = new Set(['id', 'ifname', 'mode', 'force-copy', 'queues', 'start-queue', 'inhibit', 'sock-fds', 'map-path', 'map-start-index', 'guest-umem', 'multi-buffer']);
const MAX_QUEUES = 1024;

/** Parses `af-xdp,id=n1,ifname=eth0,...` (the leading type may be omitted). */
export function parseAfXdpOptions(spec: string): AfXdpOptions {
  const parts = splitOptions(spec);
  if (parts.length > 0 && !parts[0]!.includes('=')) {
    const type = parts.shift()!;
    if (type !== 'af-xdp') throw new OptionError(`netdev type '${type}' is not af-xdp`);
  }
  const kv = new Map<string, string>();
  for (const p of parts) {
    const eq = p.indexOf('=');
    if (eq <= 0) throw new OptionError(`af-xdp: '${p}' is not of the form key=value`);
    const key = p.slice(0, eq);
    const value = p.slice(eq + 1);
    if (!KEYS.has(key)) throw new OptionError(`af-xdp: unknown option '${key}'`);
    if (kv.has(key)) throw new OptionError(`af-xdp: option '${key}' given twice`);
    kv.set(key, value);
  }
  const id = kv.get('id');
  if (id === undefined || id === '') throw new OptionError("af-xdp: 'id' is required");
  if (!/^[A-Za-z][A-Za-z0-9_.-]*$/.test(id)) throw new OptionError(`af-xdp: 'id' must start with a letter and use only letters, digits, '-', '.', '_' (got '${id}')`);
  const ifname = kv.get('ifname');
  if (ifname === undefined || ifname === '') throw new OptionError("af-xdp: 'ifname' is required");
  if (ifname.length > 15 || /[\s/:]/.test(ifname)) throw new OptionError(`af-xdp: 'ifname' '${ifname}' is not a valid interface name`);

  const modeText = kv.get('mode');
  if (modeText !== undefined && modeText !== 'native' && modeText !== 'skb')
    throw new OptionError(`af-xdp: 'mode' must be native or skb (got '${modeText}')`);

  const opts: AfXdpOptions = {
    id,
    ifname,
    forceCopy: parseBool(kv, 'force-copy', false),
    queues: parseInteger(kv, 'queues', 1),
    startQueue: parseInteger(kv, 'start-queue', 0),
    inhibit: parseBool(kv, 'inhibit', false),
  };
  if (modeText !== undefined) opts.mode = modeText;
  if (kv.has('guest-umem')) opts.guestUmem = parseAutoOnOff(kv, 'guest-umem');
  if (kv.has('multi-buffer')) opts.multiBuffer = parseAutoOnOff(kv, 'multi-buffer');
  if (opts.queues < 1) throw new OptionError(`af-xdp: 'queues' must be at least 1 (got ${opts.queues})`);
  if (opts.queues > MAX_QUEUES) throw new OptionError(`af-xdp: 'queues' must be at most ${MAX_QUEUES} (got ${opts.queues})`);
  if (opts.startQueue < 0) throw new OptionError(`af-xdp: 'start-queue' must not be negative (got ${opts.startQueue})`);

  const fdsText = kv.get('sock-fds');
  if (fdsText !== undefined) {
    const fds = fdsText.split(':').map((t) => {
      if (!/^\d+$/.test(t)) throw new OptionError(`af-xdp: 'sock-fds' must be file descriptor numbers separated by ':' (got '${fdsText}')`);
      return Number(t);
    });
    if (new Set(fds).size !== fds.length) throw new OptionError(`af-xdp: 'sock-fds' names the same fd twice ('${fdsText}')`);
    opts.sockFds = fds;
  }
  const mapPath = kv.get('map-path');
  if (mapPath !== undefined) {
    if (mapPath === '') throw new OptionError("af-xdp: 'map-path' must name a pinned XSKMAP on a bpf filesystem (got '')");
    opts.mapPath = mapPath;
  }
  if (kv.has('map-start-index')) {
    if (mapPath === undefined) throw new OptionError("af-xdp: 'map-start-index' requires 'map-path'");
    const index = parseInteger(kv, 'map-start-index', 0);
    if (index < 0) throw new OptionError(`af-xdp: 'map-start-index' must not be negative (got ${index})`);
    // Map keys are u32: the last slot this netdev uses must fit in one.
    if (index + opts.queues - 1 > 0xffffffff)
      throw new OptionError(`af-xdp: 'map-start-index' ${index} + 'queues' ${opts.queues} does not fit a 32-bit map key`);
    opts.mapStartIndex = index;
  }
  if (opts.sockFds !== undefined && mapPath !== undefined)
    throw new OptionError("af-xdp: 'sock-fds' and 'map-path' are mutually exclusive (sockets handed in, or our own sockets put into a pinned map)");
  if (opts.inhibit && opts.sockFds === undefined && mapPath === undefined)
    throw new OptionError("af-xdp: 'inhibit=on' requires 'sock-fds' or 'map-path'");
  if (!opts.inhibit && opts.sockFds !== undefined) throw new OptionError("af-xdp: 'sock-fds' requires 'inhibit=on'");
  if (!opts.inhibit && mapPath !== undefined)
    throw new OptionError("af-xdp: 'map-path' requires 'inhibit=on' (the program that redirects into the map is somebody else's)");
  if (opts.sockFds !== undefined && opts.sockFds.length !== opts.queues)
    throw new OptionError(`af-xdp: 'sock-fds' has ${opts.sockFds.length} fds but 'queues' is ${opts.queues}: give one socket per queue`);
  return opts;
}

function parseAutoOnOff(kv: Map<string, string>, key: string): 'auto' | 'on' | 'off' {
  const v = kv.get(key);
  if (v === 'auto' || v === 'on' || v === 'off') return v;
  throw new OptionError(`af-xdp: '${key}' must be auto, on or off (got '${v ?? ''}')`);
}

/** Splits on commas; ',,' is a literal comma as in QEMU's option syntax. */
function splitOptions(spec: string): string[] {
  const out: string[] = [];
  let cur = '';
  for (let i = 0; i < spec.length; i++) {
    const ch = spec[i]!;
    if (ch === ',') {
      if (spec[i + 1] === ',') {
        cur += ',';
        i++;
        continue;
      }
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out.filter((p, i) => p !== '' || i !== out.length - 1);
}

function parseBool(kv: Map<string, string>, key: string, dflt: boolean): boolean {
  const v = kv.get(key);
  if (v === undefined) return dflt;
  if (v === 'on' || v === 'yes' || v === 'true') return true;
  if (v === 'off' || v === 'no' || v === 'false') return false;
  throw new OptionError(`af-xdp: '${key}' must be on or off (got '${v}')`);
}

function parseInteger(kv: Map<string, string>, key: string, dflt: number): number {
  const v = kv.get(key);
  if (v === undefined) return dflt;
  if (!/^-?\d+$/.test(v) || !Number.isSafeInteger(Number(v))) throw new OptionError(`af-xdp: '${key}' must be an integer (got '${v}')`);
  return Number(v);
}
