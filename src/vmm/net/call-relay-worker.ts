// The call relay's thread (call-relay.ts): sleeps in epoll on the watched
// call eventfds, drains each one that fired and posts their tags in one
// message per wake-up; ends when the stop eventfd fires.
import { parentPort, workerData } from 'node:worker_threads';
import { sys } from '../../native/sys';
import type { CallRelayMessage, CallRelayWorkerData } from './call-relay';

const d = workerData as CallRelayWorkerData;
const tags = new Int32Array(64);
for (;;) {
  const n = sys.epollWait(d.epollFd, tags, -1, undefined);
  if (n < 0) continue; // EINTR
  const fired: number[] = [];
  let stop = false;
  for (let i = 0; i < n; i++) {
    const t = tags[i]!;
    if (t === -1) stop = true;
    // A read of 0 (or an error) means another reader took it, or the fd left the set meanwhile.
    else if (sys.eventfdRead(t) > 0) fired.push(t);
  }
  if (fired.length) parentPort!.postMessage(fired satisfies CallRelayMessage);
  if (stop) break;
}
