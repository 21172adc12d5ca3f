// `xdpvm image build [--out DIR] [--force]`: the Linux guest image (kernel +
// initramfs with iperf3 and dpdk-testpmd) from Debian packages, cached by content.
import { buildLinuxImage } from '../guest-build/linux/linux-image';
import { parseFlags, UsageError } from './args';

export const IMAGE_USAGE = 'usage: xdpvm image build [--out DIR] [--force]';

export async function imageCommand(argv: readonly string[]): Promise<number> {
  const [what, ...rest] = argv;
  if (what !== 'build') throw new UsageError(`unknown image command '${what ?? ''}'\n${IMAGE_USAGE}`);
  const { flags } = parseFlags(rest, { out: { type: 'string' }, force: { type: 'boolean' } });
  const r = await buildLinuxImage({
    ...(flags.out ? { outDir: flags.out as string } : {}),
    ...(flags.force ? { force: true } : {}),
    progress: (l) => void process.stderr.write(`[image] ${l}\n`),
  });
  process.stdout.write(`${JSON.stringify({ kernel: r.kernel, initrd: r.initrd, rebuilt: r.rebuilt })}\n`);
  return 0;
}
