// Worker threads started before the code that uses them has loaded: a
// thread's own start-up (a Node isolate, its modules, native addons: tens of
// ms of CPU each) then runs beside the main thread's module loading and set-up
// instead of after it. Such a thread gets its data as its first message
// instead of workerData, so starting it early commits nothing; whoever needs
// one takes it, or starts a new one when none is waiting. Until taken a thread
// is unreferenced, so a process that never takes it (a bad option) still ends.
import { Worker } from 'node:worker_threads';
import { cachedWorkerSource } from './module-cache';

const idle = new Map<string, Worker[]>();
/** Threads that failed while idle (their 'error' came before anyone listened): never handed out. */
const failed = new WeakSet<Worker>();

/** Starts `count` threads running `file` (a worker module that takes its data by message) now. */
export function prestartThreads(file: string, count: number): void {
  let list = idle.get(file);
  if (!list) idle.set(file, (list = []));
  for (let i = 0; i < count; i++) {
    const w = new Worker(cachedWorkerSource(file), { eval: true });
    w.unref();
    w.on('error', () => failed.add(w));
    w.once('exit', () => {
      const at = list.indexOf(w);
      if (at >= 0) list.splice(at, 1);
    });
    list.push(w);
  }
}

/** A prestarted thread running `file` (referenced again), or undefined when none is waiting. */
export function takeThread(file: string): Worker | undefined {
  const list = idle.get(file);
  for (let w = list?.shift(); w; w = list?.shift()) {
    if (failed.has(w)) continue;
    w.ref();
    return w;
  }
  return undefined;
}
