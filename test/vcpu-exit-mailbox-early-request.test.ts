// A vCPU thread that posts its first exit before the platform thread starts
// serving its mailbox still gets an answer. This is what hung `xdpvm run`
// (txonly, 2 queue pairs, 2 vCPUs, no console output) once the vCPU threads
// started early and were handed their vCPU by message: a platform thread
// preempted between the message and serveMailbox() found the first request
// already posted, took it as seen, and both sides then waited for each
// other for good. No KVM: a worker plays the vCPU thread's side.
import * as assert from 'uvu/assert';
import { test } from 'uvu';
import { isMainThread, Worker, workerData } from 'node:worker_threads';
import { ExitKind, ExitMailbox, serveMailbox, Slot, StopReason } from '../src/vmm/vcpu/exit-mailbox';

const PORT = 0x3f8;
/** Only a hang guard (the test would otherwise never end); no duration is asserted. */
const HANG_MS = 30_000;

function vcpuSide(): void {
  const box = new ExitMailbox(workerData as SharedArrayBuffer);
  box.call(ExitKind.PioRead, PORT, 1);
  // The answer comes back in data[0]; report it with the stop.
  const answered = box.data[0]!;
  box.data.fill(0);
  box.data.set(Buffer.from(`answered ${answered}`));
  box.words[Slot.Status] = StopReason.Requested;
  box.call(ExitKind.Stopped, 0, 0);
}

if (!isMainThread) vcpuSide();
else {
  test('a first exit posted before the platform serves the mailbox is answered', async () => {
    const box = new ExitMailbox();
    const worker = new Worker(__filename, { workerData: box.buffer });
    // Let the vCPU side post its first request before serving starts.
    while (Atomics.load(box.words, Slot.Request) === 0) {
      const r = Atomics.waitAsync(box.words, Slot.Request, 0, 1000);
      if (r.async) await r.value;
    }
    const seen: Array<[ExitKind, number]> = [];
    let stop: string | undefined;
    let guard: NodeJS.Timeout | undefined;
    const served = serveMailbox(
      box,
      (kind, address, data) => {
        seen.push([kind, address]);
        data[0] = 0x5a;
      },
      (_reason, detail) => (stop = detail),
    );
    const hung = new Promise<'hung'>((resolve) => (guard = setTimeout(() => resolve('hung'), HANG_MS)));
    const outcome = await Promise.race([served.then(() => 'served' as const), hung]);
    clearTimeout(guard);
    if (outcome === 'hung') {
      // End the serving loop (a Stopped request of our own) and the thread, so the file fails instead of hanging.
      box.words[Slot.Kind] = ExitKind.Stopped;
      Atomics.add(box.words, Slot.Request, 1);
      Atomics.notify(box.words, Slot.Request);
      await worker.terminate();
    }
    assert.is(outcome, 'served', 'the first request was never answered');
    assert.equal(seen, [[ExitKind.PioRead, PORT]]);
    assert.is(stop, `answered ${0x5a}`);
    if (worker.threadId !== -1) await new Promise((r) => worker.once('exit', r));
  });

  test.run();
}
