// `xdpvm xsk-helper`: run as root; prepares AF_XDP sockets (program attached,
// sockets in the XSKMAP) and runs COMMAND with every capability dropped,
// as an unprivileged user, with the sockets inherited as fds 3, 4, ... and
// `{sock-fds}` in its arguments replaced by "3:4:...". Only locked memory
// for the UMEMs is granted (RLIMIT_MEMLOCK). Exits with COMMAND's status;
// the program is detached when this helper exits, however it exits.
//
// With --pin-map PATH it runs no command: it attaches the program, pins its
// XSKMAP at PATH (owned by --user) and the link at PATH_link, and exits; the
// program stays until `--unpin-map PATH`. An unprivileged VMM with
// CAP_NET_RAW then uses inhibit=on,map-path=PATH (see pinned-redirect.ts).
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { pinRedirect, unpinRedirect } from '../backend/af-xdp/pinned-redirect';
import { PreparedSockets } from '../backend/af-xdp/privileged-helper';
import { DEFAULT_FRAME_COUNT, DEFAULT_FRAME_SIZE } from '../backend/af-xdp/xsk-socket';
import { sys } from '../native/sys';
import { parseFlags, UsageError } from './args';

export const XSK_HELPER_USAGE = `usage: xdpvm xsk-helper --ifname NAME [--queues N] [--start-queue M] [--mode native|skb]
                         [--user NAME|UID] [--memlock BYTES] -- COMMAND ARGS... (with {sock-fds} in ARGS)
       xdpvm xsk-helper --ifname NAME --pin-map BPFFS_PATH [--queues N] [--start-queue M] [--mode native|skb] [--user NAME|UID]
       xdpvm xsk-helper --unpin-map BPFFS_PATH`;

const SETPRIV = '/usr/bin/setpriv';

/** Raises RLIMIT_MEMLOCK (inherited by the child) to `bytes`; without CAP_SYS_RESOURCE only up to the hard limit. */
function grantMemlock(bytes: number): void {
  const cur = sys.memlockLimit();
  if (cur.soft < 0 || cur.soft >= bytes) return;
  try {
    sys.setMemlockLimit(bytes, cur.hard < 0 || cur.hard > bytes ? cur.hard : bytes);
  } catch {
    const hard = cur.hard;
    sys.setMemlockLimit(hard, hard);
    process.stderr.write(
      `xsk-helper: cannot raise RLIMIT_MEMLOCK to ${bytes} bytes (no CAP_SYS_RESOURCE); the command gets the hard limit, ${hard} bytes\n`,
    );
  }
}

export async function xskHelperCommand(argv: readonly string[]): Promise<number> {
  const { flags, rest } = parseFlags(argv, {
    ifname: { type: 'string' },
    queues: { type: 'number', integer: true, min: 1, max: 1024 },
    'start-queue': { type: 'number', integer: true, min: 0, max: 65535 },
    mode: { type: 'enum', values: ['native', 'skb'] },
    user: { type: 'string' },
    memlock: { type: 'number', integer: true, min: 0 },
    'pin-map': { type: 'string' },
    'unpin-map': { type: 'string' },
  });
  if (flags['unpin-map'] !== undefined) return unpinMode(flags, rest);
  if (flags['pin-map'] !== undefined) return pinMode(flags, rest);
  if (!flags.ifname) throw new UsageError(`--ifname is required\n${XSK_HELPER_USAGE}`);
  if (rest.length === 0) throw new UsageError(`no command to run\n${XSK_HELPER_USAGE}`);
  if (!rest.some((a) => a.includes('{sock-fds}')))
    throw new UsageError('the command must contain {sock-fds}, e.g. -netdev af-xdp,id=n0,ifname=eth0,inhibit=on,sock-fds={sock-fds}');
  if (!existsSync(SETPRIV)) throw new UsageError(`${SETPRIV} (util-linux) is needed to drop privileges`);
  const queues = (flags.queues as number | undefined) ?? 1;
  const user = (flags.user as string | undefined) ?? 'nobody';
  if (!/^[a-z_][a-z0-9_-]*$|^\d+$/.test(user)) throw new UsageError(`--user: '${user}' is not a user name or uid`);

  const prepared = PreparedSockets.prepare({
    ifname: flags.ifname as string,
    queues,
    startQueue: (flags['start-queue'] as number | undefined) ?? 0,
    ...(flags.mode ? { mode: flags.mode as 'native' | 'skb' } : {}),
  });
  try {
    // The child registers the UMEMs: grant it exactly the locked memory they need.
    const memlock = (flags.memlock as number | undefined) ?? queues * DEFAULT_FRAME_SIZE * DEFAULT_FRAME_COUNT;
    grantMemlock(memlock);
    const fdList = prepared.fds.map((_, i) => 3 + i).join(':');
    const args = rest.map((a) => a.split('{sock-fds}').join(fdList));
    const isUid = /^\d+$/.test(user);
    const drop = [
      `--reuid=${user}`,
      `--regid=${isUid || user !== 'nobody' ? user : 'nogroup'}`,
      '--clear-groups', '--inh-caps=-all', '--ambient-caps=-all', '--bounding-set=-all', '--no-new-privs', '--',
    ];
    process.stderr.write(
      `xsk-helper: ${queues} socket(s) on ${flags.ifname as string} (${prepared.attachment.mode} mode, queues ` +
        `${(flags['start-queue'] as number | undefined) ?? 0}..), running as ${user} with no capabilities: ${args.join(' ')}\n`,
    );
    const child = spawn(SETPRIV, [...drop, ...args], { stdio: ['inherit', 'inherit', 'inherit', ...prepared.fds] });
    const forward = (sig: NodeJS.Signals): void => void child.kill(sig);
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    const code = await new Promise<number>((resolve, reject) => {
      child.on('error', reject);
      child.on('exit', (c, sig) => resolve(c ?? (sig ? 128 + 1 : 1)));
    });
    process.off('SIGINT', forward);
    process.off('SIGTERM', forward);
    return code;
  } finally {
    prepared.close();
  }
}

/** `--user` as numbers: a uid alone takes the group of its passwd entry, if it has one. */
function resolveUser(user: string): { uid: number; gid: number } {
  if (!/^[a-z_][a-z0-9_-]*$|^\d+$/.test(user)) throw new UsageError(`--user: '${user}' is not a user name or uid`);
  const id = (flag: string): number | undefined => {
    try {
      return Number(execFileSync('id', [flag, user], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
    } catch {
      return undefined;
    }
  };
  const uid = id('-u') ?? (/^\d+$/.test(user) ? Number(user) : undefined);
  if (uid === undefined) throw new UsageError(`--user: no user named '${user}'`);
  return { uid, gid: id('-g') ?? uid };
}

function pinMode(flags: Record<string, string | number | boolean | undefined>, rest: readonly string[]): number {
  if (!flags.ifname) throw new UsageError(`--ifname is required\n${XSK_HELPER_USAGE}`);
  if (rest.length > 0) throw new UsageError('--pin-map runs no command: it pins the map and exits (run the VMM afterwards with map-path=)');
  if (flags.memlock !== undefined) throw new UsageError('--memlock does not apply to --pin-map: the VMM registers its UMEMs under its own RLIMIT_MEMLOCK');
  const queues = (flags.queues as number | undefined) ?? 1;
  const startQueue = (flags['start-queue'] as number | undefined) ?? 0;
  const user = (flags.user as string | undefined) ?? 'nobody';
  const pinned = pinRedirect({
    ifname: flags.ifname as string,
    queues,
    startQueue,
    ...(flags.mode ? { mode: flags.mode as 'native' | 'skb' } : {}),
    mapPath: flags['pin-map'] as string,
    owner: resolveUser(user),
  });
  process.stderr.write(
    `xsk-helper: program ${pinned.progId} attached to ${flags.ifname as string} (${pinned.mode} mode); its XSKMAP (${pinned.maxEntries} slots, ` +
      `slot = receive queue) is pinned at ${pinned.mapPath} for ${user}, the link at ${pinned.linkPath}; undo with --unpin-map ${pinned.mapPath}\n`,
  );
  // What the VMM should be given: slot of queue i is start-queue + i, since the program keys on the receive queue.
  process.stdout.write(
    `af-xdp,ifname=${flags.ifname as string},queues=${queues},start-queue=${startQueue},inhibit=on,map-path=${pinned.mapPath},map-start-index=${startQueue}\n`,
  );
  return 0;
}

function unpinMode(flags: Record<string, string | number | boolean | undefined>, rest: readonly string[]): number {
  const extra = Object.keys(flags).filter((k) => k !== 'unpin-map' && flags[k] !== undefined);
  if (extra.length > 0) throw new UsageError(`--unpin-map takes no other options (got --${extra.join(', --')})`);
  if (rest.length > 0) throw new UsageError('--unpin-map runs no command');
  const r = unpinRedirect(flags['unpin-map'] as string);
  process.stderr.write(
    `xsk-helper: program ${r.progId} detached from ifindex ${r.ifindex}; ${r.mapRemoved ? 'map and link unpinned' : 'link unpinned (the map pin was already gone)'}\n`,
  );
  return 0;
}
