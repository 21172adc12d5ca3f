// Pinned-map mode: `xdpvm xsk-helper --pin-map` attaches the program and pins
// its XSKMAP (for one user) on bpffs, then exits; an unprivileged VMM puts its
// own sockets in with inhibit=on,map-path=...; `--unpin-map` detaches. Also
// measures which capabilities that VMM needs: CAP_NET_RAW for socket(AF_XDP),
// none for the map (opening it, checking it, inserting and deleting entries).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mapUpdateU32, MapUpdate, mapDeleteU32, BpfMapType } from '../src/bpf/syscalls';
import { xdpState } from '../src/host/netns';
import { xsk, type NativeError } from '../src/native/xsk';
import { sys } from '../src/native/sys';
import { withBpffs } from './support/bpffs';
import { frameSeq, frameTag, makeFrame } from './support/frames';
import { receive, sendAll } from './support/queue-traffic';
import { openBackend, withVeth } from './support/veth-backends';
import { NOBODY_UID as NOBODY, nobodyTest } from './support/unprivileged';

const root = path.resolve(__dirname, '..', '..');
const XDPVM = path.join(root, 'bin', 'xdpvm');
const ENDPOINT = path.join(root, 'dist', 'test', 'support', 'inhibit-endpoint.js');
const PROBE = path.join(root, 'dist', 'test', 'support', 'map-path-probe.js');
const N = 200;

function xdpvm(netns: string | undefined, args: string[]): { code: number; out: string; err: string } {
  const cmd = netns ? ['ip', 'netns', 'exec', netns, process.execPath, XDPVM, ...args] : [process.execPath, XDPVM, ...args];
  const r = spawnSync(cmd[0]!, cmd.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

/** setpriv arguments: user nobody, exactly `caps` (e.g. ['net_raw']) in every set that matters, no new privileges. */
function dropTo(caps: string[]): string[] {
  const list = caps.map((c) => `,+${c}`).join('');
  return [
    'setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups',
    `--inh-caps=-all${list}`, `--bounding-set=-all${list}`, ...(caps.length > 0 ? [`--ambient-caps=${caps.map((c) => `+${c}`).join(',')}`] : ['--ambient-caps=-all']),
    '--no-new-privs', '--',
  ];
}

/** Slots of a pinned XSKMAP holding a socket (an insert that may not overwrite fails with EEXIST there). */
function occupiedSlots(mapPath: string): number[] {
  const fd = xsk.bpfObjGet(mapPath, 0);
  const probe = xsk.socket();
  try {
    const out: number[] = [];
    for (let s = 0; s < xsk.bpfMapInfo(fd).maxEntries; s++) {
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

interface EndpointResult {
  uid: number;
  caps: Record<string, string>;
  sent: number;
  received: number;
  inOrder: boolean;
  mode: string;
}

nobodyTest('pinned for nobody; a child with only CAP_NET_RAW moves traffic both ways through map-path; --unpin-map detaches', async () => {
  await withBpffs(async (dir) => {
    await withVeth('pinmap', {}, async (pair) => {
      const mapPath = path.join(dir, 'xsks_map');
      const pin = xdpvm(pair.a.netns, ['xsk-helper', '--ifname', pair.a.ifname, '--pin-map', mapPath]);
      assert.is(pin.code, 0, pin.err);
      assert.is(pin.out.trim(), `af-xdp,ifname=${pair.a.ifname},queues=1,start-queue=0,inhibit=on,map-path=${mapPath},map-start-index=0`);
      const st = statSync(mapPath);
      assert.is(st.uid, NOBODY, 'the map pin is handed to --user (default nobody)');
      assert.is(st.mode & 0o777, 0o600);
      assert.is(statSync(`${mapPath}_link`).uid, 0, 'the link pin stays root\'s: the user cannot detach the program');
      assert.ok(xdpState(pair.a.netns, pair.a.ifname).attached !== 0, 'program stays attached after the helper exited');

      const peer = openBackend(pair.b.netns, `af-xdp,id=p,ifname=${pair.b.ifname}`);
      try {
        const args = [...dropTo(['net_raw']), process.execPath, ENDPOINT, `af-xdp,id=n0,ifname=${pair.a.ifname},inhibit=on,map-path=${mapPath}`, String(N)];
        const child = spawn('ip', ['netns', 'exec', pair.a.netns, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        let err = '';
        child.stderr.on('data', (d: Buffer) => (err += d.toString()));
        const ready = new Promise<void>((resolve) => {
          child.stdout.on('data', (d: Buffer) => {
            out += d.toString();
            if (out.includes('ready\n')) resolve();
          });
        });
        const exited = new Promise<number>((resolve) => child.on('exit', (c) => resolve(c ?? -1)));
        await Promise.race([ready, exited]);
        assert.ok(out.includes('ready'), `child did not start: ${err}`);
        assert.equal(occupiedSlots(mapPath), [0], 'the child put its socket at slot 0');
        const q = peer.queues[0]!;
        const fromChild = await receive(q, N, 10000, (f) => frameSeq(f) >= 0 && frameTag(f) === 7);
        assert.is(fromChild.length, N, 'peer received what the child sent');
        for (let i = 0; i < N; i += 100) await sendAll(q, Array.from({ length: 100 }, (_, k) => makeFrame(i + k, 100, 8)));
        const code = await exited;
        assert.is(code, 0, `child exit ${code}: ${err}`);
        const r = JSON.parse(out.trim().split('\n').pop()!) as EndpointResult;
        assert.is(r.uid, NOBODY);
        // CAP_NET_RAW (bit 13) and nothing else, in every set.
        assert.equal(r.caps, { inheritable: '2000', permitted: '2000', effective: '2000', bounding: '2000', ambient: '2000' });
        assert.is(r.sent, N);
        assert.is(r.received, N, 'the child received every frame the peer sent through the pinned map');
        assert.ok(r.inOrder);
        assert.equal(occupiedSlots(mapPath), [], 'the child took its socket out at tear-down');
        assert.ok(xdpState(pair.a.netns, pair.a.ifname).attached !== 0, 'the program is the helper\'s, still attached');
      } finally {
        peer.close();
      }
      const unpin = xdpvm(undefined, ['xsk-helper', '--unpin-map', mapPath]);
      assert.is(unpin.code, 0, unpin.err);
      assert.match(unpin.err, /detached/);
      assert.is(xdpState(pair.a.netns, pair.a.ifname).attached, 0, 'unpinning detached the program');
      assert.not.ok(existsSync(mapPath) || existsSync(`${mapPath}_link`));
    });
  });
});

nobodyTest('measured: the map needs no capability at all; only socket(AF_XDP) needs CAP_NET_RAW', async () => {
  await withBpffs(async (dir) => {
    await withVeth('pincap', {}, async (pair) => {
      const mapPath = path.join(dir, 'xsks_map');
      const pin = xdpvm(pair.a.netns, ['xsk-helper', '--ifname', pair.a.ifname, '--pin-map', mapPath]);
      assert.is(pin.code, 0, pin.err);
      const sysctl = readFileSync('/proc/sys/kernel/unprivileged_bpf_disabled', 'utf8').trim();
      // 1. Every bpf(2) call map-path makes, by a process with no capability, on a socket root created.
      const sock = xsk.socket();
      try {
        const r = spawnSync(dropTo([])[0]!, [...dropTo([]).slice(1), process.execPath, PROBE, mapPath], {
          encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe', sock],
        });
        assert.is(r.status, 0, r.stderr);
        const probe = JSON.parse(r.stdout.trim()) as { uid: number; caps: Record<string, string>; result: Record<string, string> };
        assert.equal(probe.caps, { inheritable: '0', permitted: '0', effective: '0', bounding: '0', ambient: '0' });
        assert.equal(probe.result, { objGet: 'ok', kind: 'ok', info: 'ok', insert: 'ok', delete: 'ok' },
          `with no capability (kernel.unprivileged_bpf_disabled=${sysctl})`);
        console.log(`measured (Linux ${readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim()}, unprivileged_bpf_disabled=${sysctl}): ` +
          `BPF_OBJ_GET, BPF_OBJ_GET_INFO_BY_FD, BPF_MAP_UPDATE_ELEM and BPF_MAP_DELETE_ELEM on a pinned XSKMAP with no capability: ${JSON.stringify(probe.result)}`);
      } finally {
        sys.close(sock);
      }
      // 2. The whole backend with no capability: the socket is what fails, and nothing is left in the map.
      const args = [...dropTo([]), process.execPath, ENDPOINT, `af-xdp,id=n0,ifname=${pair.a.ifname},inhibit=on,map-path=${mapPath}`, '1'];
      const r = spawnSync('ip', ['netns', 'exec', pair.a.netns, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      assert.is(r.status, 1);
      assert.match(r.stderr, /socket\(AF_XDP\): Operation not permitted/);
      assert.equal(occupiedSlots(mapPath), []);
      console.log('measured: the backend with no capability fails at socket(AF_XDP) (EPERM); with CAP_NET_RAW alone it runs (previous test)');
      assert.is(xdpvm(undefined, ['xsk-helper', '--unpin-map', mapPath]).code, 0);
    });
  });
});

nobodyTest('a pin the user may not open (--user root): permission denied, nothing set up', async () => {
  await withBpffs(async (dir) => {
    await withVeth('pinperm', {}, async (pair) => {
      const mapPath = path.join(dir, 'xsks_map');
      const pin = xdpvm(pair.a.netns, ['xsk-helper', '--ifname', pair.a.ifname, '--pin-map', mapPath, '--user', '0']);
      assert.is(pin.code, 0, pin.err);
      assert.is(statSync(mapPath).uid, 0);
      const args = [...dropTo(['net_raw']), process.execPath, ENDPOINT, `af-xdp,id=n0,ifname=${pair.a.ifname},inhibit=on,map-path=${mapPath}`, '1'];
      const r = spawnSync('ip', ['netns', 'exec', pair.a.netns, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      assert.is(r.status, 1);
      assert.match(r.stderr, /'map-path': cannot open '.*': permission denied/);
      assert.equal(occupiedSlots(mapPath), []);
      assert.is(xdpvm(undefined, ['xsk-helper', '--unpin-map', mapPath]).code, 0);
    });
  });
});

test('--pin-map errors: clear message, nothing attached, nothing pinned', async () => {
  await withBpffs(async (dir) => {
    await withVeth('pinerr', {}, async (pair) => {
      const ns = pair.a.netns;
      const ifn = pair.a.ifname;
      const cases: Array<[string[], number, RegExp]> = [
        [['--pin-map', '/tmp/xsks_map'], 1, /'\/tmp' is not on a bpf filesystem/],
        [['--pin-map', path.join(dir, 'no', 'xsks_map')], 1, /directory '.*\/no' does not exist/],
        [['--pin-map', path.join(dir, 'xsks.map')], 1, /bpffs names cannot contain '\.'/],
        [['--pin-map', path.join(dir, 'm'), '--ifname', 'nosuchif0'], 1, /no interface named 'nosuchif0'/],
        [['--pin-map', path.join(dir, 'm'), '--user', 'no-such-user'], 2, /no user named 'no-such-user'/],
        [['--pin-map', path.join(dir, 'm'), '--', 'true'], 2, /runs no command/],
        [['--pin-map', path.join(dir, 'm'), '--memlock', '1'], 2, /--memlock does not apply/],
      ];
      for (const [extra, code, message] of cases) {
        const args = ['xsk-helper', ...(extra.includes('--ifname') ? [] : ['--ifname', ifn]), ...extra];
        const r = xdpvm(ns, args);
        assert.is(r.code, code, `${extra.join(' ')}: ${r.err}`);
        assert.match(r.err, message);
        assert.is(xdpState(ns, ifn).attached, 0, `${extra.join(' ')}: nothing attached`);
      }
      assert.is(xdpvm(ns, ['xsk-helper', '--pin-map', path.join(dir, 'm')]).code, 2, 'without --ifname');
      assert.not.ok(existsSync(path.join(dir, 'm')) || existsSync(path.join(dir, 'm_link')), 'nothing pinned');

      // An existing pin is never replaced: the first one stays as it was.
      const mapPath = path.join(dir, 'xsks_map');
      assert.is(xdpvm(ns, ['xsk-helper', '--ifname', ifn, '--pin-map', mapPath]).code, 0);
      const prog = xdpState(ns, ifn).progId;
      const again = xdpvm(ns, ['xsk-helper', '--ifname', ifn, '--pin-map', mapPath]);
      assert.is(again.code, 1);
      assert.match(again.err, /already exists \(undo an earlier pin with --unpin-map/);
      assert.is(xdpState(ns, ifn).progId, prog, 'the first program is still the one attached');
      assert.is(xdpvm(undefined, ['xsk-helper', '--unpin-map', mapPath]).code, 0);
      assert.is(xdpState(ns, ifn).attached, 0);
    });
  });
});

test('--unpin-map refuses what --pin-map did not pin, and leaves it', async () => {
  await withBpffs(async (dir) => {
    const foreign = path.join(dir, 'foreign');
    const fd = xsk.bpfMapCreate(BpfMapType.XSKMAP, 4, 4, 1, 'foreign');
    xsk.bpfObjPin(fd, foreign);
    sys.close(fd);
    const r = xdpvm(undefined, ['xsk-helper', '--unpin-map', foreign]);
    assert.is(r.code, 1);
    assert.match(r.err, /was not pinned by 'xsk-helper --pin-map'; not touching it/);
    assert.ok(existsSync(foreign));
    // A '_link' that is no link (here: another map) is refused too.
    const fd2 = xsk.bpfMapCreate(BpfMapType.XSKMAP, 4, 4, 1, 'fake_link');
    xsk.bpfObjPin(fd2, `${foreign}_link`);
    sys.close(fd2);
    const r2 = xdpvm(undefined, ['xsk-helper', '--unpin-map', foreign]);
    assert.is(r2.code, 1);
    assert.match(r2.err, /is not a pinned BPF link; not touching it/);
    assert.ok(existsSync(foreign) && existsSync(`${foreign}_link`));
    mkdirSync(path.join(dir, 'd'));
    const r3 = xdpvm(undefined, ['xsk-helper', '--unpin-map', path.join(dir, 'd', 'nothing'), '--ifname', 'x']);
    assert.is(r3.code, 2);
    assert.match(r3.err, /--unpin-map takes no other options/);
  });
});

test.run();
