// The I/O worker of one virtio-net queue pair: the only thread touching that
// pair's virtqueues and its AF_XDP socket. It busy-polls while there is
// traffic (guest kicks disabled), and when idle arms the guest's kicks,
// re-checks, and sleeps in epoll on the kick eventfds and the socket.
import { workerData } from 'node:worker_threads';
import { AfXdpQueue } from '../backend/af-xdp/af-xdp-queue';
import { XskSocket } from '../backend/af-xdp/xsk-socket';
import { Epoll, EpollEvents } from '../kvm/epoll';
import { GuestMemory } from '../memory/guest-memory';
import { kvmNative } from '../native/kvm';
import { xsk } from '../native/xsk';
import { NetQueuePair } from '../virtio/net/queue-pair';
import { COUNTER_NAMES, Control, type QueuePairWorkerData } from './queue-pair-thread';

const TAG_RX_KICK = 0;
const TAG_TX_KICK = 1;
const TAG_SOCKET = 2;
const TAG_WAKE = 3;
const SLEEP_MS = 200;

function run(d: QueuePairWorkerData): void {
  const ctl = new Int32Array(d.control, 0, Control.Words);
  const live = new Float64Array(d.control, Control.Words * 4, COUNTER_NAMES.length);
  const memory = new GuestMemory(d.regions.map((r) => ({ gpa: r.gpa, bytes: new Uint8Array(xsk.alias(r.address, r.length)) })));
  const queue = new AfXdpQueue(XskSocket.fromHandle(d.socket));
  const { fds, spec } = d;
  const pair = new NetQueuePair({
    ...spec,
    memory,
    backend: queue,
    signal: (i) => void kvmNative.eventfdWrite(i === spec.rx.index ? fds.rxCall : fds.txCall, 1),
    onBroken: () => {
      Atomics.store(ctl, Control.Broken, 1);
      Atomics.notify(ctl, Control.Broken);
    },
  });
  const epoll = Epoll.create();
  epoll.add(fds.rxKick, TAG_RX_KICK);
  epoll.add(fds.txKick, TAG_TX_KICK);
  epoll.add(d.wakeFd, TAG_WAKE);
  let socketEvents: number = EpollEvents.In;
  epoll.add(queue.pollFd, TAG_SOCKET, socketEvents);
  const tags = new Int32Array(8);
  const c = pair.counters;
  let sleeps = 0;
  const publish = (): void => {
    live[0] = c.txFrames;
    live[1] = c.txBytes;
    live[2] = c.rxFrames;
    live[3] = c.rxBytes;
    live[4] = c.rxNoBuffers;
    live[5] = c.txBackpressure;
    live[6] = c.interrupts;
    live[7] = sleeps;
  };
  Atomics.store(ctl, Control.Running, 1);
  Atomics.notify(ctl, Control.Running);
  pair.disarmNotifications();
  let idle = 0;
  let rounds = 0;
  while (Atomics.load(ctl, Control.Stop) === 0 && !pair.broken) {
    pair.service();
    // Copy mode sends inside a syscall: frames still on the Tx ring need another kick.
    if (queue.txUnsent() > 0) queue.txFlush();
    if ((++rounds & 63) === 0) publish();
    if (pair.lastWork > 0 || pair.txBlocked) {
      idle = 0;
      continue;
    }
    if (++idle < d.spinRounds) continue;
    // Idle: arm kicks, close the race, sleep until a kick, a frame or a stop.
    if (pair.armNotifications()) {
      pair.disarmNotifications();
      idle = 0;
      continue;
    }
    const want = (pair.rxBlocked ? 0 : EpollEvents.In) | (pair.txBlocked ? EpollEvents.Out : 0);
    if (want !== socketEvents) {
      epoll.modify(queue.pollFd, TAG_SOCKET, want);
      socketEvents = want;
    }
    publish();
    sleeps++;
    const n = epoll.wait(tags, SLEEP_MS);
    for (let i = 0; i < n; i++) {
      const t = tags[i]!;
      if (t === TAG_RX_KICK) kvmNative.eventfdRead(fds.rxKick);
      else if (t === TAG_TX_KICK) kvmNative.eventfdRead(fds.txKick);
      else if (t === TAG_WAKE) kvmNative.eventfdRead(d.wakeFd);
    }
    pair.disarmNotifications();
    idle = 0;
  }
  publish();
  epoll.close();
  Atomics.store(ctl, Control.Running, 0);
  Atomics.notify(ctl, Control.Running);
}

run(workerData as QueuePairWorkerData);
