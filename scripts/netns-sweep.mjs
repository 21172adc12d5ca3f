// The network namespaces a test process leaves behind. Every namespace the
// project makes is named xdpvm-...-PID or xdpvm-...-PID-SERIAL after the
// process that made it (src/host/netns.ts), and that process removes it on
// the way out, even on SIGINT/SIGTERM; a process killed outright (SIGKILL, a
// runner's time limit) cannot. A namespace whose process is gone is a leak:
// its veth pair and XDP programs go with it when it is deleted.
import { spawnSync } from 'node:child_process';

const OWNED = /^xdpvm-.*?-(\d+)(?:-\d+)?$/;

/** The project's namespaces: name and the pid of the process that made it. */
export function ourNetns() {
  const r = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  if (r.status !== 0) return [];
  const out = [];
  for (const line of r.stdout.split('\n')) {
    const name = line.split(' ')[0];
    const m = OWNED.exec(name ?? '');
    if (m) out.push({ name, pid: Number(m[1]) });
  }
  return out;
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return e.code === 'EPERM';
  }
}

/** Deletes the namespaces whose process is gone (not in `keep`); returns their names. */
export function sweepDeadNetns(keep = new Set()) {
  const gone = ourNetns().filter((n) => !keep.has(n.name) && !alive(n.pid));
  for (const n of gone) spawnSync('ip', ['netns', 'delete', n.name]);
  return gone.map((n) => n.name);
}
