// Compressed kernel modules (.ko.xz, .ko.zst, .ko.gz): the builder collects
// them with their dependencies and puts them into the image decompressed, as
// plain .ko files busybox insmod can load.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { skipTest } from './support/skip';
import { listTree } from '../src/guest-build/linux/deb';
import { collectModules, readModule } from '../src/guest-build/linux/kernel-modules';
import { PackageTree } from '../src/guest-build/linux/package-tree';

const release: string | undefined = existsSync('/lib/modules')
  ? readdirSync('/lib/modules').find((r) => existsSync(`/lib/modules/${r}/kernel/drivers/net/virtio_net.ko`))
  : undefined;

const MODS = {
  virtio_net: ['kernel/drivers/net/virtio_net.ko', 'xz'],
  net_failover: ['kernel/drivers/net/net_failover.ko', 'zstd'],
  failover: ['kernel/net/core/failover.ko', 'gzip'],
  virtio: ['kernel/drivers/virtio/virtio.ko', 'none'],
  virtio_ring: ['kernel/drivers/virtio/virtio_ring.ko', 'none'],
} as const;
const SUFFIX = { xz: '.xz', zstd: '.zst', gzip: '.gz', none: '' } as const;

const NAME = 'compressed modules are collected with their dependencies and stored decompressed';
if (!release) skipTest(NAME, 'no uncompressed virtio_net.ko under /lib/modules on this host');
else test(NAME, async () => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'kmod-'));
  try {
    const originals = new Map<string, Buffer>();
    for (const [name, [rel, tool]] of Object.entries(MODS)) {
      const src = readFileSync(`/lib/modules/${release}/${rel}`);
      originals.set(name, src);
      const dst = path.join(root, 'lib/modules', release, `${rel}${SUFFIX[tool]}`);
      mkdirSync(path.dirname(dst), { recursive: true });
      writeFileSync(dst, tool === 'none' ? src : execFileSync(tool, ['-c'], { input: src, maxBuffer: 64 << 20 }));
      assert.equal(await readModule(dst), src, `${tool} round trip`);
    }
    const tree = new PackageTree();
    tree.add('linux-image-test', root, listTree(root));
    const set = await collectModules(tree, release, ['virtio_net']);
    const order = set.modules.map((m) => m.name);
    assert.equal([...order].sort(), Object.keys(MODS).sort());
    const before = (a: string, b: string): void => assert.ok(order.indexOf(a) < order.indexOf(b), `${a} before ${b}: ${order.join(' ')}`);
    before('failover', 'net_failover');
    before('net_failover', 'virtio_net');
    before('virtio_ring', 'virtio');
    before('virtio', 'virtio_net');
    assert.is(order[order.length - 1], 'virtio_net');
    for (const m of set.modules) {
      assert.equal(m.bytes, originals.get(m.name), `${m.name} decompressed`);
      assert.ok(m.rel.endsWith('.ko'), m.rel);
    }
    assert.is(set.modules.find((m) => m.name === 'virtio_net')!.shippedAs, 'virtio_net.ko.xz');
    assert.equal(
      [...set.dep.get('kernel/drivers/net/virtio_net.ko')!].sort(),
      ['kernel/drivers/net/net_failover.ko', 'kernel/drivers/virtio/virtio.ko', 'kernel/drivers/virtio/virtio_ring.ko', 'kernel/net/core/failover.ko'],
      'modules.dep lists dependencies transitively',
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

const UNKNOWN_NAME = 'a module that is neither shipped nor built in is an error naming it';
if (!release) skipTest(UNKNOWN_NAME, 'no uncompressed virtio_net.ko under /lib/modules on this host');
else test(UNKNOWN_NAME, async () => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'kmod-'));
  try {
    const dst = path.join(root, 'lib/modules', release, 'kernel/net/core/failover.ko');
    mkdirSync(path.dirname(dst), { recursive: true });
    writeFileSync(dst, readFileSync(`/lib/modules/${release}/kernel/net/core/failover.ko`));
    const tree = new PackageTree();
    tree.add('k', root, listTree(root));
    try {
      await collectModules(tree, release, ['failover', 'no_such_driver']);
      assert.unreachable();
    } catch (e) {
      assert.match((e as Error).message, /no_such_driver is not in/);
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test.run();
