// Kernel module load order: from a modules.dep (the format depmod writes),
// the modules asked for come after all their dependencies, each once, with
// '-' and '_' alike; unknown modules and cycles are errors. Dependencies
// read from a real module's .modinfo agree with modinfo(8).
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { skipTest } from './support/skip';
import { elfSection } from '../src/guest-build/linux/elf';
import { formatModulesDep, moduleName, orderModules, parseModinfo, parseModulesDep } from '../src/guest-build/linux/kernel-modules';

const SAMPLE = `
kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko
kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko
kernel/net/core/failover.ko:
kernel/drivers/virtio/virtio.ko:
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/drivers/virtio/virtio_pci_legacy_dev.ko:
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_legacy_dev.ko kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko
kernel/drivers/uio/uio.ko:
kernel/drivers/uio/uio_pci_generic.ko: kernel/drivers/uio/uio.ko
kernel/virt/lib/irqbypass.ko:
kernel/drivers/vfio/vfio.ko:
kernel/drivers/vfio/vfio_virqfd.ko:
kernel/drivers/vfio/vfio_iommu_type1.ko: kernel/drivers/vfio/vfio.ko
kernel/drivers/vfio/pci/vfio-pci-core.ko: kernel/drivers/vfio/vfio_virqfd.ko kernel/virt/lib/irqbypass.ko kernel/drivers/vfio/vfio.ko
kernel/drivers/vfio/pci/vfio-pci.ko: kernel/drivers/vfio/pci/vfio-pci-core.ko kernel/drivers/vfio/vfio_virqfd.ko kernel/virt/lib/irqbypass.ko kernel/drivers/vfio/vfio.ko
kernel/drivers/block/unrelated.ko:
`;

function assertDepsFirst(order: string[], dep: Map<string, string[]>): void {
  order.forEach((m, i) => {
    for (const d of dep.get(m)!) assert.ok(order.indexOf(d) >= 0 && order.indexOf(d) < i, `${d} before ${m} in ${order.join(' ')}`);
  });
  assert.is(new Set(order).size, order.length, 'no module twice');
}

test('modules.dep parses into path -> dependencies', () => {
  const dep = parseModulesDep(SAMPLE);
  assert.is(dep.size, 17);
  assert.equal(dep.get('kernel/drivers/uio/uio_pci_generic.ko'), ['kernel/drivers/uio/uio.ko']);
  assert.equal(dep.get('kernel/net/core/failover.ko'), []);
  assert.equal(parseModulesDep(formatModulesDep(dep)), dep);
});

test('virtio_net and vfio-pci: dependencies first, only the closure', () => {
  const dep = parseModulesDep(SAMPLE);
  const order = orderModules(dep, ['virtio_net', 'vfio-pci']);
  assertDepsFirst(order, dep);
  assert.equal(order.map(moduleName).sort(), ['failover', 'irqbypass', 'net_failover', 'vfio', 'vfio_pci', 'vfio_pci_core', 'vfio_virqfd', 'virtio_net'].sort());
  assert.not.ok(order.some((m) => m.includes('unrelated')));
});

test('the full list from guest-images/linux/modules.txt orders cleanly', () => {
  const dep = parseModulesDep(SAMPLE);
  const wanted = readFileSync(path.resolve(__dirname, '..', '..', 'guest-images', 'linux', 'modules.txt'), 'utf8')
    .split('\n')
    .map((l) => l.replace(/#.*/, '').trim())
    .filter(Boolean);
  const order = orderModules(dep, wanted);
  assertDepsFirst(order, dep);
  // Asking for a dependency before what needs it does not load it twice.
  assert.ok(order.indexOf('kernel/drivers/virtio/virtio.ko') < order.indexOf('kernel/drivers/virtio/virtio_pci.ko'));
});

test("'-' and '_' name the same module; a path works too", () => {
  const dep = parseModulesDep(SAMPLE);
  assert.equal(orderModules(dep, ['vfio_pci']), orderModules(dep, ['vfio-pci']));
  assert.equal(orderModules(dep, ['kernel/drivers/uio/uio_pci_generic.ko']), ['kernel/drivers/uio/uio.ko', 'kernel/drivers/uio/uio_pci_generic.ko']);
  assert.is(moduleName('kernel/drivers/vfio/pci/vfio-pci.ko.xz'), 'vfio_pci');
  assert.is(moduleName('x/virtio_net.ko.zst'), 'virtio_net');
});

test('unknown module and dependency cycle are errors', () => {
  const dep = parseModulesDep(SAMPLE);
  assert.throws(() => orderModules(dep, ['virtio_net', 'no_such_module']), /unknown module.*no_such_module/);
  const cyc = parseModulesDep('a.ko: b.ko\nb.ko: c.ko\nc.ko: a.ko\n');
  assert.throws(() => orderModules(cyc, ['a']), /cycle: a -> b -> c -> a/);
  assert.throws(() => orderModules(parseModulesDep('a.ko: gone.ko\n'), ['a']), /gone\.ko/);
});

const MODULES = '/lib/modules';
const release = existsSync(MODULES) ? readdirSync(MODULES).find((r) => existsSync(path.join(MODULES, r, 'kernel/drivers/net/virtio_net.ko'))) : undefined;
const MODINFO_NAME = '.modinfo depends= of a real module matches modinfo -F depends';
if (release === undefined) skipTest(MODINFO_NAME, `no ${MODULES}/*/kernel/drivers/net/virtio_net.ko on this host`);
else test(MODINFO_NAME, () => {
  const base = MODULES;
  const rel = release;
  const ko = path.join(base, rel, 'kernel/drivers/net/virtio_net.ko');
  const info = parseModinfo(elfSection(readFileSync(ko), '.modinfo')!);
  const ours = (info.get('depends')?.[0] ?? '').split(',').filter(Boolean).sort();
  const ref = execFileSync(existsSync('/usr/sbin/modinfo') ? '/usr/sbin/modinfo' : 'modinfo', ['-F', 'depends', ko], { encoding: 'utf8' }).trim().split(',').filter(Boolean).sort();
  assert.equal(ours, ref);
  assert.ok(ours.includes('net_failover'), ours.join(','));
  assert.equal(info.get('name'), ['virtio_net']);
});

test.run();
