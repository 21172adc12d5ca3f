// How `bench tcp` / `bench testpmd` pick what boots the guest, and what they
// read back, without booting anything: QEMU TCG by default where Linux cannot
// run under KVM (no /dev/kvm, or a kvm-pvm host), saying why; `--engine kvm`
// there is a clear usage error; under KVM the guest is `xdpvm run` with an
// af-xdp netdev in the A namespace; the baseline is QEMU's tap backend with
// the same device shape; iperf3's JSON and testpmd's statistics are read
// from a console with kernel lines mixed in.
import { existsSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { UsageError } from '../src/cli/args';
import { benchTcpCommand, benchTestpmdCommand } from '../src/cli/bench-linux-command';
import { bootCommand, chooseEngine, EngineError, kvmUnavailableReason, NetRig, XDPVM_BIN, type BootSpec } from '../src/bench/linux-guest-rig';
import { parseIperfSection, tcpGuestScript } from '../src/bench/linux-tcp-bench';
import { parseTestpmdConsole, testpmdGuestScript } from '../src/bench/linux-testpmd-bench';
import { guestKernelCmdline } from '../src/guest-build/linux/guest-console';
import { parseRunOptions } from '../src/vmm/run-options';

const NO_KVM_PVM = { pvm: true, kvmDevice: false };
const PVM_HOST = { pvm: true, kvmDevice: true };
const KVM_HOST = { pvm: false, kvmDevice: true };

test('default engine: qemu-tcg without /dev/kvm or on a PVM host (with the reason), kvm on a real KVM host', () => {
  const a = chooseEngine(undefined, NO_KVM_PVM);
  assert.is(a.engine, 'qemu-tcg');
  assert.match(a.why, /no \/dev\/kvm.*kvm-pvm guest/);
  const b = chooseEngine(undefined, PVM_HOST);
  assert.is(b.engine, 'qemu-tcg');
  assert.match(b.why, /kvm-pvm host.*cannot boot/);
  assert.is(chooseEngine(undefined, { pvm: false, kvmDevice: false }).engine, 'qemu-tcg');
  assert.is(chooseEngine(undefined, KVM_HOST).engine, 'kvm');
  assert.is(chooseEngine('qemu-tcg', KVM_HOST).engine, 'qemu-tcg');
  assert.is(chooseEngine('kvm', KVM_HOST).engine, 'kvm');
});

test('--engine kvm where Linux cannot run under KVM: an EngineError that says why and what to use', () => {
  for (const s of [NO_KVM_PVM, PVM_HOST]) {
    try {
      chooseEngine('kvm', s);
      assert.unreachable('should throw');
    } catch (e) {
      assert.instance(e, EngineError);
      assert.match((e as Error).message, /^--engine kvm: .*use --engine qemu-tcg/);
    }
  }
});

const WHY_NOT_KVM = kvmUnavailableReason();
if (WHY_NOT_KVM === undefined) {
  test('on this host (KVM can run Linux): with no --engine the Linux benches choose kvm', () => {
    assert.is(chooseEngine().engine, 'kvm');
    assert.is(chooseEngine('kvm').engine, 'kvm');
  });
} else test('on this host (KVM cannot run Linux): the commands refuse --engine kvm with a usage error before touching anything', async () => {
  const why = WHY_NOT_KVM;
  console.log(`  here: ${why}`);
  assert.is(chooseEngine().engine, 'qemu-tcg');
  for (const cmd of [() => benchTcpCommand(['--engine', 'kvm', '--seconds', '1']), () => benchTestpmdCommand(['--mode', 'txonly', '--engine', 'kvm'])]) {
    try {
      await cmd();
      assert.unreachable('should throw');
    } catch (e) {
      assert.instance(e, UsageError);
      assert.match((e as Error).message, /--engine kvm: .*(\/dev\/kvm|kvm-pvm)/);
    }
  }
});

test('command-line errors (before any run): --mode is required for testpmd, unknown engines and flags, a --baseline that is not this benchmark', async () => {
  const other = path.join(tmpdir(), `xdpvm-baseline-${process.pid}.json`);
  writeFileSync(other, JSON.stringify({ benchmark: 'backend', workload: 'txonly' }));
  const bad: Array<[() => Promise<number>, RegExp]> = [
    [() => benchTcpCommand(['--baseline', '/nonexistent.json']), /--baseline \/nonexistent\.json: .*ENOENT/],
    [() => benchTcpCommand(['--baseline', other]), /is a backend txonly result, not linux tcp/],
    [() => benchTestpmdCommand(['--mode', 'txonly', '--baseline', other]), /is a backend txonly result, not linux-testpmd txonly/],
    [() => benchTestpmdCommand([]), /--mode is required/],
    [() => benchTestpmdCommand(['--mode', 'fwd']), /--mode must be one of txonly, rxonly, io/],
    [() => benchTcpCommand(['--engine', 'xen']), /--engine must be one of qemu-tcg, kvm/],
    [() => benchTcpCommand(['--compare', 'vhost']), /--compare must be one of qemu-tap, none/],
    [() => benchTcpCommand(['--size', '64']), /unknown option --size/],
  ];
  for (const [fn, re] of bad) {
    try {
      await fn();
      assert.unreachable('should throw');
    } catch (e) {
      assert.instance(e, UsageError);
      assert.match((e as Error).message, re);
    }
  }
  unlinkSync(other);
});

const rig = { a: { netns: 'xdpvm-x-a-1', ifname: 'xv-a' } };
const spec = (o: Partial<BootSpec>): BootSpec => ({
  engine: 'qemu-tcg',
  nic: 'xdpvm',
  image: { kernel: '/img/vmlinuz', initrd: '/img/initrd.img' },
  rig,
  params: { cmd: 'true', ip: '198.18.1.2/24' },
  timeoutMs: 1000,
  label: 't',
  ...o,
});

test('kvm engine: the guest boots in `xdpvm run` with an af-xdp netdev on A, inside namespace a', () => {
  const { cmd, args } = bootCommand(spec({ engine: 'kvm' }));
  assert.is(cmd, 'ip');
  assert.equal(args.slice(0, 3), ['netns', 'exec', 'xdpvm-x-a-1']);
  assert.is(args[3], process.execPath);
  assert.is(args[4], XDPVM_BIN);
  assert.ok(existsSync(XDPVM_BIN), `${XDPVM_BIN} exists`);
  assert.is(args[5], 'run');
  const opt = (name: string): string | undefined => args[args.indexOf(name) + 1];
  assert.is(opt('-m'), '512M');
  assert.is(opt('-kernel'), '/img/vmlinuz');
  assert.is(opt('-initrd'), '/img/initrd.img');
  assert.is(opt('-netdev'), 'af-xdp,id=n0,ifname=xv-a');
  assert.is(opt('-device'), `virtio-net-pci,netdev=n0,mac=${NetRig.GUEST_MAC}`);
  assert.is(opt('-append'), guestKernelCmdline({ cmd: 'true', ip: '198.18.1.2/24' }));
  // And `xdpvm run` accepts it as it stands.
  const parsed = parseRunOptions(args.slice(6));
  assert.is(parsed.memoryBytes, 512 << 20);
  assert.is(parsed.nets.length, 1);
  assert.is(parsed.nets[0]!.backend.ifname, 'xv-a');
});

test('qemu-tcg engine: vhost-user NIC on shared memory; the baseline is a tap in namespace a with the same device', () => {
  const fakeDevice = { socketPath: '/tmp/vu.sock' } as unknown as NonNullable<BootSpec['device']>;
  const ours = bootCommand(spec({ device: fakeDevice }));
  assert.match(ours.cmd, /qemu-system-x86_64$/);
  const s = ours.args.join(' ');
  assert.match(s, /-accel tcg -cpu max/);
  assert.match(s, /memory-backend-memfd,id=mem,size=512M,share=on -numa node,memdev=mem/);
  assert.match(s, /-chardev socket,id=c0,path=\/tmp\/vu\.sock -netdev vhost-user,id=n0,chardev=c0/);
  assert.match(s, /-device virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56,vectors=0/);
  const tap = bootCommand(spec({ nic: 'qemu-tap' }));
  assert.is(tap.cmd, 'ip');
  const t = tap.args.join(' ');
  assert.match(t, /^netns exec xdpvm-x-a-1 \S*qemu-system-x86_64 /);
  assert.match(t, /-netdev tap,id=n0,ifname=xt0,script=no,downscript=no,vhost=off -device virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56,vectors=0/);
  assert.not.match(t, /vhost-user|memfd/);
  const kvmTap = bootCommand(spec({ engine: 'kvm', nic: 'qemu-tap' })).args.join(' ');
  assert.match(kvmTap, /-accel kvm -cpu host/);
});

test('guest scripts fit on the kernel command line', () => {
  for (const cmd of [tcpGuestScript(NetRig.PEER_IP, 600), testpmdGuestScript('txonly', 600), testpmdGuestScript('rxonly', 600)]) {
    assert.ok(guestKernelCmdline({ cmd, ip: '198.18.1.2/24', hugepages: 64, bind: 'uio' }).length < 2048);
  }
});

test('iperf3 JSON and testpmd statistics are read from a console with kernel lines in between', () => {
  const consoleText = [
    'XDPVM-BEGIN',
    'XDPVM-IPERF fwd begin',
    '{',
    '  "start": {},',
    '[   12.345678] random: crng init done',
    '  "end": { "sum_sent": { "bytes": 1000, "seconds": 3.0, "bits_per_second": 2666.6, "retransmits": 2 },',
    '           "sum_received": { "bytes": 900, "seconds": 3.0, "bits_per_second": 2400 } }',
    '}',
    'XDPVM-IPERF fwd end rc=0',
    'XDPVM-IPERF rev begin',
    '{ "error": "unable to connect to server: Connection timed out" }',
    'XDPVM-IPERF rev end rc=1',
  ].join('\r\n');
  const fwd = parseIperfSection(consoleText, 'fwd');
  assert.is(fwd.rc, 0);
  assert.is(fwd.json.end?.sum_received?.bytes, 900);
  assert.is(fwd.json.end?.sum_sent?.retransmits, 2);
  const rev = parseIperfSection(consoleText, 'rev');
  assert.is(rev.rc, 1);
  assert.match(rev.json.error ?? '', /Connection timed out/);
  assert.throws(() => parseIperfSection('XDPVM-IPERF fwd begin\n{', 'fwd'), /markers missing/);

  const pmd = [
    'XDPVM-TESTPMD ready',
    'XDPVM-TESTPMD start 9.81',
    'XDPVM-TESTPMD stop 12.91',
    '  ---------------------- Forward statistics for port 0  ----------------------',
    '  RX-packets: 12             RX-dropped: 3             RX-total: 15',
    '  TX-packets: 443424         TX-dropped: 12232128      TX-total: 12675552',
    'XDPVM-TESTPMD exit rc=0',
  ].join('\n');
  const p = parseTestpmdConsole(pmd);
  assert.equal(p.stats, { rxPackets: 12, rxDropped: 3, txPackets: 443424, txDropped: 12232128 });
  assert.ok(Math.abs(p.windowSeconds - 3.1) < 1e-9);
  assert.throws(() => parseTestpmdConsole('XDPVM-TESTPMD start 1\nXDPVM-TESTPMD stop 2\n'), /no forward statistics/);
});

test.run();
