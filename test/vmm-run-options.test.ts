// `xdpvm run` command-line parsing: QEMU's spelling, and a named error for each mistake.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseRunOptions } from '../src/vmm/run-options';

test('parses a QEMU-style command line with two NICs', () => {
  const o = parseRunOptions([
    '-m', '512M', '-smp', '2', '-kernel', 'k', '-initrd', 'i', '-append', 'console=ttyS0',
    '-netdev', 'af-xdp,id=n1,ifname=eth0,queues=2', '-device', 'virtio-net-pci,netdev=n1,mac=02:00:00:00:00:01',
    '-netdev', 'af-xdp,id=n2,ifname=eth1', '-device', 'virtio-net-pci,netdev=n2',
  ]);
  assert.is(o.memoryBytes, 512 << 20);
  assert.is(o.cpus, 2);
  assert.is(o.kernel, 'k');
  assert.is(o.initrd, 'i');
  assert.is(o.append, 'console=ttyS0');
  assert.equal(o.nets.map((n) => [n.id, n.backend.ifname, n.backend.queues, [...n.mac]]), [
    ['n1', 'eth0', 2, [2, 0, 0, 0, 0, 1]],
    ['n2', 'eth1', 1, [0x52, 0x54, 0, 0x12, 0x34, 0x57]],
  ]);
});

test('-iopl takes 0 or 3, once; the default is 3', () => {
  assert.is(parseRunOptions(['-kernel', 'k']).iopl, 3);
  assert.is(parseRunOptions(['-kernel', 'k', '-iopl', '0']).iopl, 0);
  assert.is(parseRunOptions(['-kernel', 'k', '-iopl', '3']).iopl, 3);
  assert.throws(() => parseRunOptions(['-kernel', 'k', '-iopl', '1']), /-iopl: '1' is not 0 or 3/);
  assert.throws(() => parseRunOptions(['-kernel', 'k', '-iopl', '0', '-iopl', '0']), /-iopl given twice/);
  assert.throws(() => parseRunOptions(['-kernel', 'k', '-iopl']), /-iopl needs a value/);
});

test('thread placement: -vcpu-cpus/-vcpu-nice and the device\'s io-cpus=/poll-max-ns=/coalesce-us=/io-nice=', () => {
  const o = parseRunOptions([
    '-kernel', 'k', '-smp', '2', '-vcpu-cpus', '1:0', '-vcpu-nice', '19',
    '-netdev', 'af-xdp,id=n1,ifname=eth0,queues=2', '-device', 'virtio-net-pci,netdev=n1,io-cpus=1:0,poll-max-ns=25000,coalesce-us=40,io-nice=-5',
  ]);
  assert.equal(o.vcpuCpus, [1, 0]);
  assert.is(o.vcpuNice, 19);
  assert.equal(o.nets[0]!.io, { cpus: [1, 0], pollUs: 25, coalesceUs: 40, nice: -5 });
  const plain = parseRunOptions(['-kernel', 'k', '-netdev', 'af-xdp,id=n1,ifname=eth0', '-device', 'virtio-net-pci,netdev=n1']);
  assert.is(plain.vcpuCpus, undefined);
  assert.is(plain.vcpuNice, undefined);
  assert.is(plain.nets[0]!.io, undefined, 'no settings: the runner defaults');
  const bad = (argv: string[], re: RegExp): void => assert.throws(() => parseRunOptions(['-kernel', 'k', ...argv]), re);
  bad(['-vcpu-cpus', '0:x'], /-vcpu-cpus: 'x' is not a host CPU/);
  bad(['-vcpu-cpus', '4096'], /-vcpu-cpus: '4096' is not a host CPU/);
  bad(['-vcpu-cpus', '0:0'], /-vcpu-cpus names 2 CPUs for 1 vCPU/);
  bad(['-vcpu-cpus', '0', '-vcpu-cpus', '0'], /-vcpu-cpus given twice/);
  bad(['-vcpu-nice', '20'], /-vcpu-nice: '20' is not an integer in -20..19/);
  bad(['-vcpu-nice', '1.5'], /-vcpu-nice: '1.5' is not an integer/);
  const dev = (props: string, re: RegExp): void => bad(['-netdev', 'af-xdp,id=n1,ifname=eth0', '-device', `virtio-net-pci,netdev=n1,${props}`], re);
  dev('io-cpus=0:0', /io-cpus names 2 CPUs for 1 I\/O thread/);
  dev('io-cpus=-1', /io-cpus: '-1' is not a host CPU/);
  dev('poll-max-ns=-3', /poll-max-ns: '-3' is not an integer in 0\.\./);
  dev('coalesce-us=100001', /coalesce-us: '100001' is not an integer in 0\.\.100000/);
  dev('coalesce-us=10', /coalesce-us: 10 µs is below the 25 µs a wait takes to pay for itself/);
  dev('coalesce-us=24', /coalesce-us: 24 µs is below the 25 µs/);
  dev('io-nice=x', /io-nice: 'x' is not an integer/);
  dev('iothread=io0', /unknown property 'iothread'/);
  dev('poll-grow=x', /poll-grow: 'x' is not an integer/);
  dev('poll-shrink=2000', /poll-shrink: '2000' is not an integer in 0\.\.1024/);
  dev('iothread-vq-mapping=1', /iothread-vq-mapping: I\/O thread '1' is not between 0 and 0/);
  dev('iothread-vq-mapping=0:0', /iothread-vq-mapping: the I\/O thread mapping names 2 queue pair\(s\), the device has 1/);
  dev('iothread-vq-mapping=a', /iothread-vq-mapping \(one I\/O thread index per queue pair/);
});

test('iothread-vq-mapping= puts queue pairs on shared I/O threads; io-cpus= then places the threads', () => {
  const two = (props: string): string[] => ['-kernel', 'k', '-netdev', 'af-xdp,id=n1,ifname=eth0,queues=2', '-device', `virtio-net-pci,netdev=n1,${props}`];
  const o = parseRunOptions(two('iothread-vq-mapping=0:0,io-cpus=1,poll-max-ns=20000,poll-grow=4,poll-shrink=2'));
  assert.equal(o.nets[0]!.io, { threadOf: [0, 0], cpus: [1], pollUs: 20, pollGrow: 4, pollShrink: 2 });
  assert.throws(() => parseRunOptions(two('iothread-vq-mapping=0:0,io-cpus=0:1')), /io-cpus names 2 CPUs for 1 I\/O thread/);
  assert.throws(() => parseRunOptions(two('iothread-vq-mapping=1:1')), /I\/O thread 0 serves no queue pair/);
  assert.equal(parseRunOptions(two('iothread-vq-mapping=1:0')).nets[0]!.io, { threadOf: [1, 0] });
});

test('-m takes QEMU sizes, plain numbers are MiB', () => {
  assert.is(parseRunOptions(['-m', '1G', '-kernel', 'k']).memoryBytes, 1 << 30);
  assert.is(parseRunOptions(['-m', '64', '-kernel', 'k']).memoryBytes, 64 << 20);
});

const bad: Array<[string[], RegExp]> = [
  [[], /-kernel is required/],
  [['-kernel'], /-kernel needs a value/],
  [['-kernel', 'k', '-m', 'lots'], /-m: 'lots' is not a size/],
  [['-kernel', 'k', '-m', '8M'], /-m: memory must be/],
  [['-kernel', 'k', '-smp', '0'], /-smp: between 1 and 64/],
  [['-kernel', 'k', '-smp', 'x'], /-smp: 'x' is not a vCPU count/],
  [['-kernel', 'k', '-kernel', 'j'], /-kernel given twice/],
  [['-kernel', 'k', '-device', 'e1000,netdev=n1'], /only virtio-net-pci/],
  [['-kernel', 'k', '-device', 'virtio-net-pci'], /netdev= is required/],
  [['-kernel', 'k', '-device', 'virtio-net-pci,netdev=n9'], /no -netdev with id 'n9'/],
  [['-kernel', 'k', '-netdev', 'af-xdp,id=n1,ifname=e'], /-netdev 'n1' has no -device/],
  [['-kernel', 'k', '-netdev', 'af-xdp,id=n1,ifname=e,queues=0', '-device', 'virtio-net-pci,netdev=n1'], /-netdev: af-xdp: 'queues' must be at least 1/],
  [['-kernel', 'k', '-netdev', 'af-xdp,id=n1,ifname=e', '-device', 'virtio-net-pci,netdev=n1,mac=zz'], /mac 'zz'/],
  [['-kernel', 'k', '-netdev', 'af-xdp,id=n1,ifname=e', '-device', 'virtio-net-pci,netdev=n1,mac=01:00:00:00:00:01'], /multicast/],
  [['-kernel', 'k', '-netdev', 'af-xdp,id=n1,ifname=e', '-device', 'virtio-net-pci,netdev=n1', '-device', 'virtio-net-pci,netdev=n1'], /already used/],
  [['-kernel', 'k', '-bogus'], /unknown option '-bogus'/],
];
for (const [argv, msg] of bad) {
  test(`rejects ${argv.join(' ') || '(nothing)'}`, () => {
    assert.throws(() => parseRunOptions(argv), msg);
  });
}

test.run();
