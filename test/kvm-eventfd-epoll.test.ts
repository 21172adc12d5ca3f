// eventfd and epoll as an I/O worker uses them: epoll wakes on an eventfd
// with the tag it was registered with, times out with 0, and a kick
// (the vCPU kick signal) ends a wait blocked in another thread.
import * as assert from 'uvu/assert';
import { test } from 'uvu';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { Epoll, EpollEvents } from '../src/host/epoll';
import { EventFd } from '../src/host/eventfd';
import { kvmNative } from '../src/native/kvm';

test('epoll wakes on an eventfd and reports its tag and events', () => {
  const ep = Epoll.create();
  const a = EventFd.create({ nonblock: true });
  const b = EventFd.create({ nonblock: true });
  try {
    ep.add(a.fd, 11);
    ep.add(b.fd, -7);
    const tags = new Int32Array(8);
    const events = new Uint32Array(8);
    assert.is(ep.wait(tags, 0, events), 0, 'nothing ready');
    b.write(3);
    assert.is(ep.wait(tags, 1000, events), 1);
    assert.is(tags[0], -7);
    assert.is(events[0]! & EpollEvents.In, EpollEvents.In);
    assert.is(b.read(), 3);
    assert.is(b.read(), 0, 'non-blocking read of an empty eventfd');
    a.write();
    b.write();
    assert.is(ep.wait(tags, 1000), 2);
    assert.equal([...tags.subarray(0, 2)].sort((x, y) => x - y), [-7, 11]);
    ep.delete(a.fd);
    assert.is(ep.wait(tags, 0), 1, 'only b is still registered');
    const t0 = Date.now();
    b.read();
    assert.is(ep.wait(tags, 50), 0);
    assert.ok(Date.now() - t0 >= 40, 'waited for the timeout');
  } finally {
    a.close();
    b.close();
    ep.close();
  }
});

test('a semaphore eventfd hands out one count per read', () => {
  const e = EventFd.create({ semaphore: true, nonblock: true, initval: 2 });
  try {
    assert.is(e.read(), 1);
    assert.is(e.read(), 1);
    assert.is(e.read(), 0);
  } finally {
    e.close();
  }
});

function workerMain(): void {
  const ctl = new Int32Array(workerData as SharedArrayBuffer);
  const ep = Epoll.create();
  const never = EventFd.create();
  ep.add(never.fd, 1);
  Atomics.store(ctl, 0, kvmNative.vcpuThreadId());
  Atomics.notify(ctl, 0);
  const t0 = Date.now();
  const n = ep.wait(new Int32Array(4), 10_000);
  parentPort!.postMessage({ n, ms: Date.now() - t0 });
  never.close();
  ep.close();
}

if (isMainThread) {
  test('the kick signal ends an epoll wait blocked in a worker thread', async () => {
    const ctl = new Int32Array(new SharedArrayBuffer(4));
    const w = new Worker(__filename, { workerData: ctl.buffer });
    const done = new Promise<{ n: number; ms: number }>((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
    });
    while (Atomics.load(ctl, 0) === 0) await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, 100)); // let it block in epoll_wait
    assert.is(kvmNative.kickThread(Atomics.load(ctl, 0)), 0);
    const r = await done;
    assert.is(r.n, 0, 'interrupted, nothing ready');
    assert.ok(r.ms < 5000, `woke early (${r.ms} ms)`);
    await new Promise((res) => w.once('exit', res));
  });
  test.run();
} else {
  workerMain();
}
