// The guest's network set-up, with a virtio-net device on a QEMU hub that has
// nothing else on it (frames never leave the QEMU process): xdpvm.ip gives
// eth0 its address; xdpvm.bind=uio hands the device to uio_pci_generic and
// dpdk-testpmd probes it with DPDK's virtio PMD; xdpvm.bind=vfio explains
// why it cannot work without an IOMMU on Debian's kernel.
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { buildLinuxImage, type LinuxImage } from '../src/guest-build/linux/linux-image';
import { bootTcg, ensureQemu, type TcgBootOptions } from '../src/harness/qemu-tcg';

const WORK = process.env.XDPVM_IMAGE_TEST_DIR ?? '/var/tmp/xdpvm-guest-image-test';
const ISOLATED_NIC = ['-netdev', 'hubport,id=n0,hubid=0', '-device', 'virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56'];
let image: LinuxImage | undefined;

async function boot(o: Omit<TcgBootOptions, 'kernel' | 'initrd'>): Promise<Awaited<ReturnType<typeof bootTcg>>> {
  if (!image) {
    image = await buildLinuxImage({ outDir: path.join(WORK, 'out'), cacheDir: path.join(WORK, 'cache'), progress: (l) => console.log(`  [image] ${l}`) });
    await ensureQemu((l) => console.log(`  ${l}`));
  }
  const r = await bootTcg({ kernel: image.kernel, initrd: image.initrd, timeoutMs: 180_000, qemuArgs: ISOLATED_NIC, ...o });
  console.log(`  boot: ${r.seconds.toFixed(1)} s, rc ${r.rc}, error ${r.error}`);
  assert.not.ok(r.timedOut, 'powered off by itself');
  return r;
}

test('xdpvm.ip: eth0 is up with the address', async () => {
  const r = await boot({ cmd: 'ip -o -4 addr show dev eth0; cat /sys/class/net/eth0/address', ip: '10.9.0.2/24' });
  assert.is(r.rc, 0, r.console.slice(-3000));
  assert.match(r.output, /eth0\s+inet 10\.9\.0\.2\/24/);
  assert.match(r.output, /52:54:00:12:34:56/);
});

test('xdpvm.bind=uio: uio_pci_generic owns the device and testpmd drives it', async () => {
  const r = await boot({
    cmd: 'echo "pci=$XDPVM_PCI"; ls /dev/uio0 && dpdk-testpmd --lcores 0@0,1@0 -a "$XDPVM_PCI" -- -i --total-num-mbufs=2048',
    bind: 'uio',
    hugepages: 64,
  });
  assert.is(r.rc, 0, r.console.slice(-4000));
  assert.match(r.console, /bound to uio_pci_generic/);
  assert.match(r.output, /Probe PCI driver: net_virtio \(1af4:(1000|1041)\)/);
  assert.match(r.output, /Port 0: 52:54:00:12:34:56/);
});

test('xdpvm.bind=vfio without an IOMMU: a clear XDPVM-ERROR', async () => {
  const r = await boot({ cmd: 'true', bind: 'vfio' });
  assert.not.ok(r.began);
  assert.match(r.error ?? '', /no IOMMU group.*CONFIG_VFIO_NOIOMMU.*xdpvm\.bind=uio/);
});

test.run();
