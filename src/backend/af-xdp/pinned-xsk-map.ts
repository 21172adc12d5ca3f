// map-path=: an XSKMAP somebody else pinned on bpffs (a privileged helper,
// the Kubernetes AF_XDP device plugin). We open it, check that it is an
// XSKMAP with room for our slots, put our own bound sockets into slots
// start..start+queues-1 and take them out again at tear-down.
//
// Needs no capability: BPF_OBJ_GET is governed by the pin's file mode and
// owner, and updating or deleting XSKMAP entries through a read-write map fd
// is not capability-checked (measured on Linux 6.18 with
// kernel.unprivileged_bpf_disabled=2; test/xsk-helper-pinned-map.test.ts).
// Creating the AF_XDP sockets themselves needs CAP_NET_RAW.
//
// A slot that already holds a socket is refused, not overwritten (QEMU and
// DPDK overwrite): the kernel drops a socket's map entries when the socket is
// closed, so an occupied slot always belongs to a live socket of somebody
// else, and overwriting it would silently steal that process's traffic.
import { existsSync, statSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { bpfObjectKind, BpfMapType, mapDeleteU32, mapUpdateU32, MapUpdate, onBpfFs } from '../../bpf/syscalls';
import { xsk, type NativeError } from '../../native/xsk';
import { sys } from '../../native/sys';
import { OptionError } from './af-xdp-options';

const MAP_TYPE_NAMES: Record<number, string> = { 1: 'HASH', 2: 'ARRAY', 6: 'PERCPU_ARRAY', 14: 'DEVMAP', 16: 'CPUMAP', 17: 'XSKMAP' };

export class PinnedXskMap {
  private readonly inserted = new Set<number>();
  private closed = false;

  private constructor(
    readonly path: string,
    private readonly fd: number,
    readonly startIndex: number,
    readonly maxEntries: number,
  ) {}

  /** Opens the map at `path` and checks that slots start..start+slots-1 exist. */
  static open(path: string, startIndex: number, slots: number): PinnedXskMap {
    let fd: number;
    try {
      fd = xsk.bpfObjGet(path, 0);
    } catch (e) {
      throw objGetError(path, e as NativeError);
    }
    try {
      const kind = bpfObjectKind(fd);
      if (kind !== 'map') throw new OptionError(`af-xdp: 'map-path': '${path}' is a pinned BPF ${kind}, not a map`);
      const info = xsk.bpfMapInfo(fd);
      if (info.type !== BpfMapType.XSKMAP) {
        const name = MAP_TYPE_NAMES[info.type] ?? `type ${info.type}`;
        throw new OptionError(`af-xdp: 'map-path': '${path}' is a BPF_MAP_TYPE_${name} map ('${info.name}'), not an XSKMAP`);
      }
      if (startIndex + slots > info.maxEntries) {
        throw new OptionError(
          `af-xdp: 'map-start-index' ${startIndex} + 'queues' ${slots} needs slots up to ${startIndex + slots - 1} ` +
            `but the XSKMAP at '${path}' has ${info.maxEntries} (slots 0..${info.maxEntries - 1})`,
        );
      }
      return new PinnedXskMap(path, fd, startIndex, info.maxEntries);
    } catch (e) {
      sys.close(fd);
      throw e;
    }
  }

  /** Puts the socket of queue `queue` (0-based within this netdev) at startIndex + queue; refuses an occupied slot. */
  insert(queue: number, xskFd: number): void {
    const slot = this.startIndex + queue;
    try {
      mapUpdateU32(this.fd, slot, xskFd, MapUpdate.NOEXIST);
    } catch (e) {
      const err = e as NativeError;
      if (err.code === 'EEXIST')
        throw new OptionError(
          `af-xdp: 'map-path': slot ${slot} of '${this.path}' already holds another AF_XDP socket (a live one: the kernel ` +
            `empties a socket's slots when it closes); not overwriting it. Pick a free range with 'map-start-index'`,
        );
      if (err.code === 'EPERM' || err.code === 'EACCES')
        throw new OptionError(`af-xdp: 'map-path': not allowed to update '${this.path}' (${err.message}); the map must be opened read-write`);
      throw new OptionError(`af-xdp: 'map-path': cannot put the socket of queue ${queue} into slot ${slot} of '${this.path}': ${err.message}`);
    }
    this.inserted.add(slot);
  }

  /** Takes our sockets out again (BPF_MAP_DELETE_ELEM); returns the slots it could not clear, with why. */
  removeAll(): string[] {
    const problems: string[] = [];
    for (const slot of this.inserted) {
      try {
        mapDeleteU32(this.fd, slot);
      } catch (e) {
        problems.push(`slot ${slot}: ${(e as Error).message}`);
      }
    }
    this.inserted.clear();
    return problems;
  }

  /** Removes our entries and closes the map fd. Idempotent. */
  close(): string[] {
    if (this.closed) return [];
    this.closed = true;
    const problems = this.removeAll();
    sys.close(this.fd);
    return problems;
  }
}

function objGetError(path: string, err: NativeError): OptionError {
  const base = `af-xdp: 'map-path': cannot open '${path}'`;
  if (err.code === 'ENOENT') return new OptionError(`${base}: no such file (pin the XSKMAP there first, e.g. 'xdpvm xsk-helper --pin-map')`);
  if (err.code !== 'EACCES' && err.code !== 'EPERM' && err.code !== 'EINVAL') return new OptionError(`${base}: ${err.message}`);
  // BPF_OBJ_GET answers EACCES alike for a file outside bpffs, a bpffs entry that is no pinned object, and a mode that forbids us.
  // A name bpffs refuses does not exist: judge the filesystem by its directory then.
  if (!onBpfFs(existsSync(path) ? path : dirname(path))) return new OptionError(`${base}: not on a bpf filesystem (a pinned map lives on one: 'mount -t bpf bpf /sys/fs/bpf')`);
  // bpffs reserves '.' in names: looking one up fails with EPERM.
  if (err.code === 'EPERM' && basename(path).includes('.')) return new OptionError(`${base}: bpffs names cannot contain '.'`);
  if (isDirectory(path)) return new OptionError(`${base}: it is a directory, not a pinned map`);
  return new OptionError(
    `${base}: permission denied (${err.code}); the pin's owner and mode decide who may open it read-write ` +
      `('xdpvm xsk-helper --pin-map ... --user USER' hands it to USER)`,
  );
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}
