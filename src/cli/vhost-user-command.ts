// `xdpvm vhost-user`: a vhost-user back end for virtio-net whose data path
// is an AF_XDP backend. QEMU (or any vhost-user front end) connects with
//   -chardev socket,id=c0,path=PATH -netdev vhost-user,id=n0,chardev=c0
//   -device virtio-net-pci,netdev=n0 (and memory shared, e.g. memory-backend-memfd,share=on)
// Runs until SIGINT/SIGTERM, serving one front end at a time and the next
// after a disconnect; prints a line per connection and the counters at the end.
import { AfXdpBackend } from '../backend/af-xdp/af-xdp-backend';
import { OptionError, parseAfXdpOptions } from '../backend/af-xdp/af-xdp-options';
import { VhostUserServer } from '../vhost-user/server';
import { parseMac } from '../virtio/net/mac';
import { UsageError } from './args';

export const VHOST_USER_USAGE = `usage: xdpvm vhost-user (--socket PATH | --fd N) -netdev af-xdp,id=ID,ifname=IF[,queues=N][,...] [--mac MAC] [--trace]
       xdpvm vhost-user --print-capabilities`;

interface VhostUserArgs {
  socket?: string;
  fd?: number;
  netdev?: string;
  mac?: Uint8Array;
  printCapabilities: boolean;
  trace: boolean;
}

/** QEMU-style arguments: `--socket PATH` / `--socket-path=PATH`, `--fd N`, `-netdev SPEC` / `--netdev=SPEC`, `--mac MAC`. */
export function parseVhostUserArgs(argv: readonly string[]): VhostUserArgs {
  const out: VhostUserArgs = { printCapabilities: false, trace: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const eq = a.indexOf('=');
    const name = (eq > 0 ? a.slice(0, eq) : a).replace(/^--?/, '');
    if (!a.startsWith('-')) throw new UsageError(`unexpected argument '${a}'`);
    if (name === 'print-capabilities' || name === 'trace') {
      if (name === 'trace') out.trace = true;
      else out.printCapabilities = true;
      continue;
    }
    const value = eq > 0 ? a.slice(eq + 1) : argv[++i];
    if (value === undefined || value === '') throw new UsageError(`${a} needs a value`);
    const once = <K extends keyof VhostUserArgs>(key: K, v: VhostUserArgs[K]): void => {
      if (out[key] !== undefined) throw new UsageError(`-${name} given twice`);
      out[key] = v;
    };
    switch (name) {
      case 'socket':
      case 'socket-path':
        once('socket', value);
        break;
      case 'fd': {
        const n = Number(value);
        if (!Number.isInteger(n) || n < 3) throw new UsageError(`--fd must be a file descriptor number of at least 3 (got '${value}')`);
        once('fd', n);
        break;
      }
      case 'netdev':
        once('netdev', value);
        break;
      case 'mac':
        once('mac', parseMac(value, (why) => new UsageError(`--mac: ${why}`)));
        break;
      default:
        throw new UsageError(`unknown option '${a}'\n${VHOST_USER_USAGE}`);
    }
  }
  if (out.printCapabilities) return out;
  if ((out.socket === undefined) === (out.fd === undefined)) throw new UsageError(`give exactly one of --socket and --fd\n${VHOST_USER_USAGE}`);
  if (out.netdev === undefined) throw new UsageError(`-netdev af-xdp,... is required\n${VHOST_USER_USAGE}`);
  return out;
}

export async function vhostUserCommand(argv: readonly string[]): Promise<number> {
  const args = parseVhostUserArgs(argv);
  if (args.printCapabilities) {
    // vhost-user.rst "Backend program conventions": the back end's type and features, as JSON.
    process.stdout.write(`${JSON.stringify({ type: 'net', features: [] })}\n`);
    return 0;
  }
  let backend: AfXdpBackend;
  try {
    backend = AfXdpBackend.open(parseAfXdpOptions(args.netdev!));
  } catch (e) {
    if (e instanceof OptionError) throw new UsageError(e.message);
    throw e;
  }
  let server: VhostUserServer;
  try {
    server = VhostUserServer.listen({
      ...(args.socket !== undefined ? { socketPath: args.socket } : { listenFd: args.fd! }),
      backend,
      ...(args.mac ? { mac: args.mac } : {}),
      trace: args.trace,
      log: (line) => void process.stdout.write(`${line}\n`),
    });
  } catch (e) {
    backend.close();
    throw e;
  }
  const o = backend.options;
  process.stdout.write(
    `xdpvm vhost-user: listening on ${server.where}; ${o.queues} queue pair(s) on ${o.ifname} ` +
      `(queues ${o.startQueue}..${o.startQueue + o.queues - 1}, ${backend.mode} mode${backend.zeroCopy ? ', zero-copy' : ''})\n`,
  );
  const stopped = new Promise<string>((resolve) => {
    const on = (sig: NodeJS.Signals): void => resolve(sig);
    process.once('SIGINT', on);
    process.once('SIGTERM', on);
  });
  const sig = await stopped;
  process.stdout.write(`xdpvm vhost-user: ${sig}: stopping\n`);
  try {
    await server.close();
  } finally {
    backend.close();
  }
  for (let p = 0; p < server.pairs; p++) {
    const c = server.runner.counters(p);
    const a = server.frameAccounting(p);
    if (!c) {
      process.stdout.write(`queue pair ${p}: never started\n`);
      continue;
    }
    process.stdout.write(
      `queue pair ${p}: tx ${c.txFrames} frames ${c.txBytes} bytes, rx ${c.rxFrames} frames ${c.rxBytes} bytes, ` +
        `rx no-buffer waits ${c.rxNoBuffers}, rx discarded ${c.rxDiscarded}, tx backpressure ${c.txBackpressure}, interrupts ${c.interrupts}` +
        (a ? `; UMEM frames ${a.total}/${a.frameCount} accounted` : '') +
        '\n',
    );
  }
  process.stdout.write(`${server.history.length} connection(s) served\n`);
  return 0;
}
