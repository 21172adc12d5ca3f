// xdpvm command line: dispatches to the subcommands. Each command's module is
// loaded only when that command runs: `xdpvm run` would otherwise load the
// benches, the image builder and the fuzzer before the VM starts (module
// loading was the largest part of its time to the first packet).
import { RunOptionError } from '../vmm/run-options';
import { UsageError } from './args';
import { prestartRunThreads } from '../vmm/run-threads';

type Command = (argv: readonly string[]) => number | Promise<number>;

// import() compiles to a require() on first use, typed by the module it names.
const COMMANDS: Record<string, { load: () => Promise<Command>; usage: () => Promise<string> }> = {
  run: { load: async () => (await import('./run-command')).runCommand, usage: async () => (await import('./run-command')).RUN_USAGE },
  'vhost-user': {
    load: async () => (await import('./vhost-user-command')).vhostUserCommand,
    usage: async () => (await import('./vhost-user-command')).VHOST_USER_USAGE,
  },
  bench: { load: async () => (await import('./bench-command')).benchCommand, usage: async () => (await import('./bench-command')).BENCH_USAGE },
  'xsk-helper': {
    load: async () => (await import('./xsk-helper-command')).xskHelperCommand,
    usage: async () => (await import('./xsk-helper-command')).XSK_HELPER_USAGE,
  },
  fuzz: { load: async () => (await import('./fuzz-command')).fuzzCommand, usage: async () => (await import('./fuzz-command')).FUZZ_USAGE },
  image: { load: async () => (await import('./image-command')).imageCommand, usage: async () => (await import('./image-command')).IMAGE_USAGE },
};

async function usage(): Promise<string> {
  const all = await Promise.all(Object.values(COMMANDS).map((c) => c.usage()));
  return `xdpvm: a KVM VMM with a virtio-net device serviced against AF_XDP sockets\n\n${all.join('\n')}`;
}

export async function main(argv: readonly string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    if (cmd === undefined || cmd === 'help' || cmd === '--help' || cmd === '-h') {
      process.stdout.write(`${await usage()}\n`);
      return cmd === undefined ? 2 : 0;
    }
    const c = Object.hasOwn(COMMANDS, cmd) ? COMMANDS[cmd] : undefined;
    if (!c) throw new UsageError(`unknown command '${cmd}'`);
    // The vCPU and I/O threads' start-up runs beside the loading of the VMM's modules (vmm/run-threads.ts).
    if (cmd === 'run') prestartRunThreads(rest);
    return await (await c.load())(rest);
  } catch (e) {
    if (e instanceof UsageError || e instanceof RunOptionError) {
      process.stderr.write(`xdpvm: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
}
