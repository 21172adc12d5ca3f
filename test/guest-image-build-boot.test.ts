// The Linux guest image end to end: built from Debian packages (downloads
// cached under /var/tmp, so a second run of this test is fast), a second
// build with nothing changed does nothing, and the image boots under QEMU TCG
// with no network device, runs iperf3 and dpdk-testpmd between the
// XDPVM-BEGIN/XDPVM-END markers with status 0, and powers off.
import { execSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { buildLinuxImage, type LinuxImage } from '../src/guest-build/linux/linux-image';
import { bootTcg, ensureQemu } from '../src/harness/qemu-tcg';

const WORK = process.env.XDPVM_IMAGE_TEST_DIR ?? '/var/tmp/xdpvm-guest-image-test';
const outDir = path.join(WORK, 'out');
const cacheDir = path.join(WORK, 'cache');
const log = (l: string): void => console.log(`  [image] ${l}`);

let image: LinuxImage | undefined;

test('build: kernel, initrd and manifest from Debian packages', async () => {
  const t0 = Date.now();
  image = await buildLinuxImage({ outDir, cacheDir, progress: log });
  console.log(`  build: ${((Date.now() - t0) / 1000).toFixed(1)} s (${image.rebuilt ? 'built' : 'already up to date'})`);
  const m = image.manifest;
  assert.is(statSync(image.kernel).size, m.kernel.size);
  assert.is(statSync(image.initrd).size, m.initrd.size);
  const names = new Map(m.packages.map((p) => [p.name, p]));
  for (const n of ['linux-image-amd64', 'busybox-static', 'iperf3', 'libiperf0', 'libssl3', 'libc6', 'dpdk-dev', 'librte-eal23', 'librte-net-virtio23', 'librte-mempool-ring23']) {
    assert.ok(names.get(n)?.version, `${n} in the manifest with a version`);
  }
  assert.ok(m.packages.some((p) => p.role === 'kernel' && /^linux-image-6\.1\./.test(p.name)), 'a 6.1 kernel package');
  assert.match(m.kernelRelease, /^6\.1\./);
  const order = m.modules.map((r) => path.posix.basename(r, '.ko'));
  for (const mod of ['virtio', 'virtio_ring', 'virtio_pci', 'virtio_net', 'net_failover', 'uio_pci_generic', 'vfio', 'vfio_iommu_type1', 'vfio-pci']) {
    assert.ok(order.includes(mod), `${mod} in ${order.join(' ')}`);
  }
  assert.ok(order.indexOf('virtio_ring') < order.indexOf('virtio_pci'));
  assert.ok(order.indexOf('net_failover') < order.indexOf('virtio_net'));
  assert.ok(order.indexOf('vfio-pci-core') < order.indexOf('vfio-pci'));

  // What the initramfs holds.
  const magic = readFileSync(image.initrd).subarray(0, 4).toString('hex');
  assert.is(magic.slice(0, m.initrd.compression === 'zstd' ? 8 : 4), m.initrd.compression === 'zstd' ? '28b52ffd' : '1f8b');
  const list = execSync(`${m.initrd.compression === 'zstd' ? 'zstd -dc' : 'gzip -dc'} ${image.initrd} | cpio -t --quiet`, {
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  }).split('\n');
  for (const f of [
    'init',
    'dev/console',
    'usr/bin/busybox',
    'usr/bin/sh',
    'usr/bin/iperf3',
    'usr/bin/dpdk-testpmd',
    'usr/lib64/ld-linux-x86-64.so.2',
    'usr/lib/x86_64-linux-gnu/libc.so.6',
    'usr/lib/x86_64-linux-gnu/dpdk/pmds-23.0/librte_net_virtio.so.23.0',
    'usr/lib/x86_64-linux-gnu/dpdk/pmds-23.0/librte_mempool_ring.so.23.0',
    `usr/lib/modules/${m.kernelRelease}/kernel/drivers/net/virtio_net.ko`,
    'etc/xdpvm/modules.load',
  ]) {
    assert.ok(list.includes(f), `${f} in the initramfs`);
  }
  console.log(`  image: vmlinuz ${(m.kernel.size / 1e6).toFixed(1)} MB, initrd.img ${(m.initrd.size / 1e6).toFixed(1)} MB (${m.initrd.compression}, ${(m.initrd.uncompressedSize / 1e6).toFixed(1)} MB, ${m.initrd.entries} entries), ${m.packages.length} packages`);
});

test('second build with nothing changed is a no-op that says so', async () => {
  assert.ok(image, 'built');
  const lines: string[] = [];
  const t0 = Date.now();
  const again = await buildLinuxImage({ outDir, cacheDir, progress: (l) => lines.push(l) });
  const secs = (Date.now() - t0) / 1000;
  console.log(`  second build: ${secs.toFixed(1)} s: ${lines.join(' | ')}`);
  assert.is(again.rebuilt, false);
  assert.is(again.manifest.inputHash, image!.manifest.inputHash);
  assert.is(again.manifest.builtAt, image!.manifest.builtAt);
  assert.ok(lines.some((l) => /up to date/.test(l) && /nothing to do/.test(l)), lines.join('\n'));
  assert.ok(secs < 30, `no-op took ${secs} s`);
});

test('boots under QEMU TCG (no network device): iperf3 and dpdk-testpmd run, rc=0, power off', async () => {
  assert.ok(image, 'built');
  await ensureQemu(log);
  const cmd = [
    'iperf3 --version',
    // Two lcores on the one vCPU; no PCI; a null port; a small mbuf pool; interactive mode ends at EOF on stdin.
    'dpdk-testpmd -v --lcores 0@0,1@0 --no-pci --vdev net_null0 -- -i --total-num-mbufs=2048',
  ].join('\n');
  const r = await bootTcg({ kernel: image!.kernel, initrd: image!.initrd, cmd, hugepages: 64, timeoutMs: 240_000 });
  console.log(`  boot: ${r.seconds.toFixed(1)} s wall (init ready at ${r.readyAfter ?? '?'} s guest uptime), qemu exit ${r.exitCode}`);
  if (r.rc !== 0) console.log(r.console.slice(-6000));
  assert.not.ok(r.timedOut, 'QEMU finished by itself (the guest powered off)');
  assert.is(r.exitCode, 0);
  assert.is(r.error, undefined, `no XDPVM-ERROR (${r.error})`);
  assert.ok(r.began, 'XDPVM-BEGIN seen');
  assert.is(r.rc, 0, 'XDPVM-END rc=0');
  assert.match(r.output, /^iperf 3\.\d+/m);
  assert.match(r.output, /RTE Version: 'DPDK 22\.11\.\d+'/);
  assert.match(r.output, /Port 0: [0-9A-F:]{17}/);
  assert.match(r.output, /Bye\.\.\./);
});

test.run();
