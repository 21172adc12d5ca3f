// Run by the pinned-map test as a child with chosen capabilities: does, on
// the pinned XSKMAP at PATH, exactly the bpf(2) calls map-path makes (open,
// info, insert without overwrite, delete) with an AF_XDP socket it inherited
// as fd 3, and prints its capability sets and each call's outcome as JSON.
//   node map-path-probe.js PATH
import { capabilitySets } from '../../src/host/capabilities';
import { bpfObjectKind, mapDeleteU32, mapUpdateU32, MapUpdate } from '../../src/bpf/syscalls';
import { xsk, type NativeError } from '../../src/native/xsk';

const mapPath = process.argv[2]!;
const result: Record<string, string> = {};
const step = <T>(name: string, fn: () => T): T | undefined => {
  try {
    const v = fn();
    result[name] = 'ok';
    return v;
  } catch (e) {
    result[name] = (e as NativeError).code ?? (e as Error).message;
    return undefined;
  }
};
const fd = step('objGet', () => xsk.bpfObjGet(mapPath, 0));
if (fd !== undefined) {
  step('kind', () => {
    if (bpfObjectKind(fd) !== 'map') throw new Error('not a map');
  });
  step('info', () => xsk.bpfMapInfo(fd));
  step('insert', () => mapUpdateU32(fd, 0, 3, MapUpdate.NOEXIST));
  step('delete', () => mapDeleteU32(fd, 0));
}
const caps = capabilitySets();
process.stdout.write(
  `${JSON.stringify({ uid: process.getuid?.(), caps: Object.fromEntries(Object.entries(caps).map(([k, v]) => [k, v.toString(16)])), result })}\n`,
);
