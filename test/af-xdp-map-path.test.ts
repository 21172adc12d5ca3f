// inhibit=on,map-path=...: the backend opens its own sockets and puts them into
// an XSKMAP pinned on bpffs (a fresh bpffs mount per test, a veth pair in
// fresh namespaces). Frames flow through the pinned map both ways; tear-down
// leaves the map empty; every setup error leaves no fd, no map entry and the
// attach state as it was.
import { existsSync, mkdirSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BpfHelper, BpfProgram, Reg, XdpAction } from '../src/bpf/assembler';
import { attachXdpLink, BpfMapType, loadXdpProgram, mapDeleteU32, mapUpdateU32, MapUpdate, XdpFlags } from '../src/bpf/syscalls';
import { inNetns, xdpState } from '../src/host/netns';
import { pinRedirect, unpinRedirect } from '../src/backend/af-xdp/pinned-redirect';
import { xsk, type NativeError } from '../src/native/xsk';
import { PinnedXskMap } from '../src/backend/af-xdp/pinned-xsk-map';
import { sys } from '../src/native/sys';
import { withBpffs } from './support/bpffs';
import { openFds } from './support/fd-count';
import { frameSeq, frameTag, makeFrame } from './support/frames';
import { receive, sendAll } from './support/queue-traffic';
import { openBackend, withVeth } from './support/veth-backends';

const N = 200;
const ROOT = { uid: 0, gid: 0 };

/**
 * The occupied slots of a pinned XSKMAP. Userspace can neither read an XSKMAP
 * (lookup: EOPNOTSUPP) nor learn from a delete whether a slot was full (it
 * always succeeds), so each slot is probed with an insert that must not
 * overwrite (EEXIST: occupied), undone at once.
 */
function occupiedSlots(mapPath: string): number[] {
  const fd = xsk.bpfObjGet(mapPath, 0);
  const probe = xsk.socket();
  try {
    const { maxEntries } = xsk.bpfMapInfo(fd);
    const out: number[] = [];
    for (let s = 0; s < maxEntries; s++) {
      try {
        mapUpdateU32(fd, s, probe, MapUpdate.NOEXIST);
        mapDeleteU32(fd, s);
      } catch (e) {
        if ((e as NativeError).code !== 'EEXIST') throw e;
        out.push(s);
      }
    }
    return out;
  } finally {
    sys.close(probe);
    sys.close(fd);
  }
}

function pinNewMap(mapPath: string, type: number, entries: number): void {
  const fd = xsk.bpfMapCreate(type, 4, 4, entries, 'test_map');
  try {
    xsk.bpfObjPin(fd, mapPath);
  } finally {
    sys.close(fd);
  }
}

test('frames flow both ways through a pinned XSKMAP; tear-down leaves it empty, unpinning detaches', async () => {
  await withBpffs(async (dir) => {
    await withVeth('mappath', {}, async (pair) => {
      const mapPath = path.join(dir, 'xsks_map');
      const pinned = inNetns(pair.a.netns, () => pinRedirect({ ifname: pair.a.ifname, queues: 1, startQueue: 0, mapPath, owner: ROOT }));
      assert.ok(xdpState(pair.a.netns, pair.a.ifname).attached !== 0, 'helper program attached');
      const peer = openBackend(pair.b.netns, `af-xdp,id=p,ifname=${pair.b.ifname}`);
      try {
        const before = openFds();
        const a = openBackend(pair.a.netns, `af-xdp,id=a,ifname=${pair.a.ifname},inhibit=on,map-path=${mapPath}`);
        assert.is(a.mode, pinned.mode, 'reports the attach mode of the program in force');
        const qa = a.queues[0]!;
        const qp = peer.queues[0]!;
        // peer -> us: the pinned map's program redirects into our socket.
        await sendAll(qp, Array.from({ length: N }, (_, i) => makeFrame(i, 100, 1)));
        const got = await receive(qa, N, 5000, (f) => frameSeq(f) >= 0 && frameTag(f) === 1);
        assert.is(got.length, N, `received ${got.length} of ${N} through the pinned map`);
        assert.ok(got.every((f, i) => frameSeq(f) === i), 'in order, intact');
        // us -> peer
        await sendAll(qa, Array.from({ length: N }, (_, i) => makeFrame(i, 100, 2)));
        const back = await receive(qp, N, 5000, (f) => frameSeq(f) >= 0 && frameTag(f) === 2);
        assert.is(back.length, N);
        assert.is(qa.counters.txPackets, N, 'our Tx count');
        assert.is(qa.counters.rxPackets, N, 'our Rx count');
        a.close();
        assert.is(openFds(), before, 'sockets and the map fd closed');
        assert.equal(occupiedSlots(mapPath), [], 'map empty after tear-down');
        assert.ok(xdpState(pair.a.netns, pair.a.ifname).attached !== 0, 'the helper program is not ours to detach');
      } finally {
        peer.close();
      }
      const r = unpinRedirect(mapPath);
      assert.is(r.progId, pinned.progId);
      assert.ok(r.mapRemoved);
      assert.is(xdpState(pair.a.netns, pair.a.ifname).attached, 0, 'unpinning the link detached the program');
      assert.not.ok(existsSync(mapPath) || existsSync(`${mapPath}_link`), 'pins gone');
    });
  });
});

test('map-start-index N puts queue 0 at slot N and nowhere else', async () => {
  await withBpffs(async (dir) => {
    await withVeth('mapidx', {}, async (pair) => {
      const mapPath = path.join(dir, 'm');
      // Our own program here: every frame goes to slot 3, whatever its queue.
      const mapFd = xsk.bpfMapCreate(BpfMapType.XSKMAP, 4, 4, 8, 'slot3');
      const prog = new BpfProgram()
        .movImm(Reg.R2, 3)
        .loadMapFd(Reg.R1, mapFd)
        .movImm(Reg.R3, XdpAction.PASS)
        .call(BpfHelper.redirectMap)
        .exit()
        .bytes();
      const progFd = loadXdpProgram(prog, 'slot3');
      const linkFd = inNetns(pair.a.netns, () => attachXdpLink(progFd, xsk.ifNameToIndex(pair.a.ifname), XdpFlags.SKB_MODE));
      xsk.bpfObjPin(mapFd, mapPath);
      const peer = openBackend(pair.b.netns, `af-xdp,id=p,ifname=${pair.b.ifname}`);
      try {
        for (const index of [2, 3]) {
          const a = openBackend(pair.a.netns, `af-xdp,id=a,ifname=${pair.a.ifname},inhibit=on,map-path=${mapPath},map-start-index=${index}`);
          try {
            await sendAll(peer.queues[0]!, Array.from({ length: N }, (_, i) => makeFrame(i, 100, index)));
            const expect = index === 3 ? N : 0;
            const got = await receive(a.queues[0]!, N, index === 3 ? 5000 : 500, (f) => frameSeq(f) >= 0 && frameTag(f) === index);
            assert.is(got.length, expect, `map-start-index=${index}: ${got.length} frames reached our socket`);
            assert.equal(occupiedSlots(mapPath), [index], `only slot ${index} holds our socket`);
          } finally {
            a.close();
          }
        }
        assert.equal(occupiedSlots(mapPath), []);
      } finally {
        peer.close();
        sys.close(linkFd);
        sys.close(progFd);
        sys.close(mapFd);
      }
    });
  });
});

test('tear-down deletes our entries itself, not relying on the socket closing', async () => {
  await withBpffs(async (dir) => {
    const mapPath = path.join(dir, 'm');
    pinNewMap(mapPath, BpfMapType.XSKMAP, 4);
    const sock = xsk.socket();
    try {
      const m = PinnedXskMap.open(mapPath, 1, 2);
      m.insert(0, sock);
      m.insert(1, sock);
      assert.equal(occupiedSlots(mapPath), [1, 2]);
      assert.equal(m.close(), []);
      assert.equal(occupiedSlots(mapPath), [], 'empty while the socket is still open');
    } finally {
      sys.close(sock);
    }
  });
});

/** Opens the backend, expects `message`, and checks that nothing was left behind. */
async function expectMapPathError(
  prepare: (dir: string, ns: string, ifname: string) => { spec: string; mapPath?: string; occupied?: number[] },
  message: RegExp,
  veth: { queues?: number } = {},
): Promise<void> {
  await withBpffs(async (dir) => {
    await withVeth('maperr', veth, async (pair) => {
      const { spec, mapPath, occupied = [] } = prepare(dir, pair.a.netns, pair.a.ifname);
      const attached = xdpState(pair.a.netns, pair.a.ifname).progId;
      const before = openFds();
      try {
        openBackend(pair.a.netns, `af-xdp,id=a,ifname=${pair.a.ifname},inhibit=on,${spec}`).close();
        assert.unreachable('setup succeeded');
      } catch (e) {
        assert.match((e as Error).message, message);
      }
      assert.is(openFds(), before, 'no fd left open');
      assert.is(xdpState(pair.a.netns, pair.a.ifname).progId, attached, 'attach state unchanged');
      if (mapPath) assert.equal(occupiedSlots(mapPath), occupied, 'only the slots somebody else held are occupied');
    });
  });
}

/** A map pinned by the helper's code, with `taken` slots holding a socket that is not the backend's. */
function helperMap(dir: string, ns: string, ifname: string, queues: number, taken: number[] = []): { mapPath: string; keep: number[] } {
  const mapPath = path.join(dir, 'xsks_map');
  inNetns(ns, () => pinRedirect({ ifname, queues, startQueue: 0, mapPath, owner: ROOT }));
  const keep: number[] = [];
  if (taken.length > 0) {
    const fd = xsk.bpfObjGet(mapPath, 0);
    try {
      for (const s of taken) {
        const other = xsk.socket();
        keep.push(other);
        mapUpdateU32(fd, s, other);
      }
    } finally {
      sys.close(fd);
    }
  }
  return { mapPath, keep };
}

test('map-path that does not exist', async () => {
  await expectMapPathError((dir) => ({ spec: `map-path=${dir}/nothing` }), /'map-path': cannot open '.*\/nothing': no such file/);
});

test('map-path with a \'.\' in its name (bpffs reserves them)', async () => {
  await expectMapPathError((dir) => ({ spec: `map-path=${dir}/xsks.map` }), /bpffs names cannot contain '\.'/);
});

test('map-path outside any bpf filesystem', async () => {
  const file = path.join('/tmp', `xdpvm-not-bpffs-${process.pid}`);
  writeFileSync(file, '');
  try {
    await expectMapPathError(() => ({ spec: `map-path=${file}` }), /not on a bpf filesystem/);
  } finally {
    unlinkSync(file);
  }
});

test('map-path naming a bpffs directory', async () => {
  await expectMapPathError((dir) => {
    mkdirSync(path.join(dir, 'pod'));
    return { spec: `map-path=${dir}/pod` };
  }, /it is a directory, not a pinned map/);
});

test('map-path naming a pinned program, not a map', async () => {
  await expectMapPathError((dir) => {
    const mapFd = xsk.bpfMapCreate(BpfMapType.XSKMAP, 4, 4, 1, 'm');
    const progFd = loadXdpProgram(new BpfProgram().movImm(Reg.R0, XdpAction.PASS).exit().bytes(), 'pass');
    xsk.bpfObjPin(progFd, path.join(dir, 'prog'));
    sys.close(progFd);
    sys.close(mapFd);
    return { spec: `map-path=${dir}/prog` };
  }, /is a pinned BPF prog, not a map/);
});

test('map-path naming a map that is not an XSKMAP', async () => {
  await expectMapPathError((dir) => {
    pinNewMap(path.join(dir, 'array'), BpfMapType.ARRAY, 4);
    return { spec: `map-path=${dir}/array` };
  }, /is a BPF_MAP_TYPE_ARRAY map \('test_map'\), not an XSKMAP/);
});

test('map-start-index past the end of the map', async () => {
  await expectMapPathError((dir) => {
    pinNewMap(path.join(dir, 'm'), BpfMapType.XSKMAP, 2);
    return { spec: `map-path=${dir}/m,map-start-index=2`, mapPath: path.join(dir, 'm') };
  }, /'map-start-index' 2 \+ 'queues' 1 needs slots up to 2 but the XSKMAP at .* has 2 \(slots 0\.\.1\)/);
});

test('more queues than the map has slots', async () => {
  await expectMapPathError((dir) => {
    pinNewMap(path.join(dir, 'm'), BpfMapType.XSKMAP, 1);
    return { spec: `map-path=${dir}/m,queues=2`, mapPath: path.join(dir, 'm') };
  }, /needs slots up to 1 but the XSKMAP at .* has 1/, { queues: 2 });
});

test('a slot that already holds somebody else\'s socket is refused, not overwritten', async () => {
  let keep: number[] = [];
  try {
    await expectMapPathError((dir, ns, ifname) => {
      const m = helperMap(dir, ns, ifname, 1, [0]);
      keep = m.keep;
      return { spec: `map-path=${m.mapPath}`, mapPath: m.mapPath, occupied: [0] };
    }, /slot 0 of '.*' already holds another AF_XDP socket .*not overwriting it/);
  } finally {
    for (const fd of keep) sys.close(fd);
  }
});

test('queue 1\'s slot taken after queue 0 went in: queue 0\'s entry is taken out again', async () => {
  let keep: number[] = [];
  try {
    await expectMapPathError((dir, ns, ifname) => {
      const m = helperMap(dir, ns, ifname, 2, [1]);
      keep = m.keep;
      return { spec: `map-path=${m.mapPath},queues=2`, mapPath: m.mapPath, occupied: [1] };
    }, /slot 1 of .* already holds another AF_XDP socket/, { queues: 2 });
  } finally {
    for (const fd of keep) sys.close(fd);
  }
});

test('a queue the interface does not have: the map is left untouched', async () => {
  await expectMapPathError((dir, ns, ifname) => {
    const m = helperMap(dir, ns, ifname, 8);
    return { spec: `map-path=${m.mapPath},start-queue=5,map-start-index=5`, mapPath: m.mapPath };
  }, /queue 5: bind failed/);
});

test('a pinned XSKMAP but no program on the interface: our entry is taken out again', async () => {
  await expectMapPathError((dir) => {
    pinNewMap(path.join(dir, 'm'), BpfMapType.XSKMAP, 1);
    return { spec: `map-path=${dir}/m`, mapPath: path.join(dir, 'm') };
  }, /'inhibit=on' but no XDP program is attached/);
});

test.run();
