// The guest's /init when it cannot do what the kernel command line asks: it
// prints one XDPVM-ERROR line saying what, never XDPVM-BEGIN, and powers off
// (QEMU exits by itself).
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { buildLinuxImage, type LinuxImage } from '../src/guest-build/linux/linux-image';
import { bootTcg, ensureQemu, type TcgBootOptions } from '../src/harness/qemu-tcg';

const WORK = process.env.XDPVM_IMAGE_TEST_DIR ?? '/var/tmp/xdpvm-guest-image-test';
let image: LinuxImage | undefined;

async function boot(o: Omit<TcgBootOptions, 'kernel' | 'initrd'>): Promise<Awaited<ReturnType<typeof bootTcg>>> {
  if (!image) {
    image = await buildLinuxImage({ outDir: path.join(WORK, 'out'), cacheDir: path.join(WORK, 'cache'), progress: (l) => console.log(`  [image] ${l}`) });
    await ensureQemu((l) => console.log(`  ${l}`));
  }
  const r = await bootTcg({ kernel: image.kernel, initrd: image.initrd, timeoutMs: 120_000, ...o });
  console.log(`  boot: ${r.seconds.toFixed(1)} s, error: ${r.error}`);
  assert.not.ok(r.timedOut, 'powered off by itself');
  assert.not.ok(r.began, 'the command never starts');
  return r;
}

test('xdpvm.ip without a network device: XDPVM-ERROR about eth0', async () => {
  const r = await boot({ cmd: 'echo should-not-run', ip: '10.0.0.2/24' });
  assert.match(r.error ?? '', /no eth0/);
  assert.not.match(r.console, /should-not-run\r?\n/);
});

test('bad parameters are named: hugepages, bind, unknown xdpvm.*', async () => {
  const r = await boot({ cmd: 'true', append: ['xdpvm.hugepages=lots'] });
  assert.match(r.error ?? '', /xdpvm\.hugepages=lots/);
  const r2 = await boot({ cmd: 'true', append: ['xdpvm.colour=blue'] });
  assert.match(r2.error ?? '', /unknown kernel parameter xdpvm\.colour/);
});

test.run();
