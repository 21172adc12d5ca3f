// A tiny initramfs for the QEMU smoke test: static busybox, the virtio-net
// modules of the host's Debian 6.1 kernel, and an /init that brings eth0 up,
// sends a few ARP requests, prints the interface's counters and powers off.
// (The full guest image is built by src/guest-build/linux; this one only needs to get the
// driver to negotiate and set up the rings.)
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

// The newest Debian kernel in /boot (the test setup installs linux-image-amd64).
export const SMOKE_KERNEL_VERSION =
  readdirSync('/boot')
    .filter((n) => n.startsWith('vmlinuz-'))
    .map((n) => n.slice('vmlinuz-'.length))
    .sort((a, b) => a.localeCompare(b, undefined, { numeric: true }))
    .pop() ?? 'missing';
export const SMOKE_KERNEL = `/boot/vmlinuz-${SMOKE_KERNEL_VERSION}`;
const MODULES = `/lib/modules/${SMOKE_KERNEL_VERSION}/kernel`;
const MODULE_FILES = [
  'drivers/virtio/virtio.ko',
  'drivers/virtio/virtio_ring.ko',
  'drivers/virtio/virtio_pci_modern_dev.ko',
  'drivers/virtio/virtio_pci_legacy_dev.ko',
  'drivers/virtio/virtio_pci.ko',
  'drivers/net/net_failover.ko',
  'net/core/failover.ko',
  'drivers/net/virtio_net.ko',
];
/** Load order (dependencies first). */
const LOAD = ['virtio_ring', 'virtio', 'virtio_pci_modern_dev', 'virtio_pci_legacy_dev', 'virtio_pci', 'failover', 'net_failover', 'virtio_net'];

/** What is missing on this machine for the smoke test, or undefined. */
export function smokeTestMissing(): string | undefined {
  for (const f of ['/usr/bin/qemu-system-x86_64', SMOKE_KERNEL, '/usr/bin/busybox', '/usr/bin/cpio', ...MODULE_FILES.map((m) => path.join(MODULES, m))])
    if (!existsSync(f)) return f;
  return undefined;
}

const INIT = `#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in ${LOAD.join(' ')}; do insmod /lib/modules/$m.ko || echo "SMOKE-INSMOD-FAILED $m"; done
sleep 1
if [ ! -d /sys/class/net/eth0 ]; then echo SMOKE-NO-ETH0; poweroff -f; fi
ip link set eth0 up
ip addr add 10.99.0.2/24 dev eth0
echo "SMOKE-ETH0-UP $(cat /sys/class/net/eth0/address)"
for i in 1 2 3 4 5 6; do arping -c 1 -w 1 -I eth0 10.99.0.1 >/dev/null 2>&1; done
echo "SMOKE-COUNTERS tx=$(cat /sys/class/net/eth0/statistics/tx_packets) rx=$(cat /sys/class/net/eth0/statistics/rx_packets)"
ip link set eth0 down
echo SMOKE-DONE
poweroff -f
`;

/** Builds the initramfs into a fresh directory; returns its path and a cleanup. */
export function buildSmokeInitrd(): { file: string; cleanup: () => void } {
  const dir = mkdtempSync(path.join(tmpdir(), 'xdpvm-smoke-'));
  const root = path.join(dir, 'root');
  for (const d of ['bin', 'proc', 'sys', 'dev', 'lib/modules']) mkdirSync(path.join(root, d), { recursive: true });
  copyFileSync('/usr/bin/busybox', path.join(root, 'bin/busybox'));
  chmodSync(path.join(root, 'bin/busybox'), 0o755);
  for (const m of MODULE_FILES) copyFileSync(path.join(MODULES, m), path.join(root, 'lib/modules', path.basename(m)));
  writeFileSync(path.join(root, 'init'), INIT, { mode: 0o755 });
  const file = path.join(dir, 'initrd.cpio');
  execFileSync('sh', ['-c', `cd '${root}' && find . | cpio -o -H newc --quiet > '${file}'`]);
  return { file, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
