// xdpvm command line: dispatches to the subcommands.
import { benchCommand, BENCH_USAGE } from './bench-command';
import { RunOptionError } from '../vmm/run-options';
import { UsageError } from './args';
import { fuzzCommand, FUZZ_USAGE } from './fuzz-command';
import { imageCommand, IMAGE_USAGE } from './image-command';
import { runCommand, RUN_USAGE } from './run-command';
import { vhostUserCommand, VHOST_USER_USAGE } from './vhost-user-command';
import { xskHelperCommand, XSK_HELPER_USAGE } from './xsk-helper-command';

const USAGE = `xdpvm: a KVM VMM with a virtio-net device serviced against AF_XDP sockets

${RUN_USAGE}
${VHOST_USER_USAGE}
${BENCH_USAGE}
${XSK_HELPER_USAGE}
${FUZZ_USAGE}
${IMAGE_USAGE}`;

export async function main(argv: readonly string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case 'bench':
        return await benchCommand(rest);
      case 'run':
        return await runCommand(rest);
      case 'vhost-user':
        return await vhostUserCommand(rest);
      case 'image':
        return await imageCommand(rest);
      case 'fuzz':
        return fuzzCommand(rest);
      case 'xsk-helper':
        return await xskHelperCommand(rest);
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(`${USAGE}\n`);
        return cmd === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown command '${cmd}'`);
    }
  } catch (e) {
    if (e instanceof UsageError || e instanceof RunOptionError) {
      process.stderr.write(`xdpvm: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
}
