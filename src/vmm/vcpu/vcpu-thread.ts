// Where the vCPU thread's module is, and how the Machine gets such a thread:
// one the CLI prestarted (run-threads.ts) or a new one. Either waits for its
// vCPU as its first message (vcpu-worker.ts).
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { cachedWorkerSource } from '../../host/module-cache';
import { takeThread } from '../../host/prestart-threads';

export const VCPU_WORKER = path.join(__dirname, 'vcpu-worker.js');

export function vcpuThread(): Worker {
  return takeThread(VCPU_WORKER) ?? new Worker(cachedWorkerSource(VCPU_WORKER), { eval: true });
}
