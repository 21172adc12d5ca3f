// `xdpvm xsk-helper`: run as root; prepares AF_XDP sockets (program attached,
// sockets in the XSKMAP) and runs COMMAND with every capability dropped,
// as an unprivileged user, with the sockets inherited as fds 3, 4, ... and
// `{sock-fds}` in its arguments replaced by "3:4:...". Only locked memory
// for the UMEMs is granted (RLIMIT_MEMLOCK). Exits with COMMAND's status;
// the program is detached when this helper exits, however it exits.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { PreparedSockets } from '../backend/af-xdp/privileged-helper';
import { DEFAULT_FRAME_COUNT, DEFAULT_FRAME_SIZE } from '../backend/af-xdp/xsk-socket';
import { sys } from '../native/sys';
import { parseFlags, UsageError } from './args';

export const XSK_HELPER_USAGE = `usage: xdpvm xsk-helper --ifname NAME [--queues N] [--start-queue M] [--mode native|skb]
                         [--user NAME|UID] [--memlock BYTES] -- COMMAND ARGS... (with {sock-fds} in ARGS)`;

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
  });
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
