// The exit mailbox under a flood of exits from two vCPU threads at once:
// every access reaches the platform thread once, in order, with its data,
// and every answer gets back, however many notifies the runtime loses on the
// way (Node 20's V8 can lose one; unbounded waits would then hang the vCPU
// for good, see src/vmm/vcpu/exit-mailbox.ts). No KVM: the workers play
// the vCPU threads' side of the protocol.
import * as assert from 'uvu/assert';
import { test } from 'uvu';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { ExitKind, ExitMailbox, serveMailbox, Slot, StopReason } from '../src/vmm/vcpu/exit-mailbox';

const CALLS = 250_000;
const VCPUS = 2;
/** Far beyond any lost-notify delay the bounded waits allow. */
const STALL_MS = 10_000;

/** The answer the platform gives a port read at `port`, call `i`: the worker checks it. */
const answerFor = (port: number, i: number): number => (port * 31 + i) & 0xff;

function vcpuSide(): void {
  const { buffer, calls } = workerData as { buffer: SharedArrayBuffer; calls: number };
  const box = new ExitMailbox(buffer);
  let wrong = 0;
  for (let i = 0; i < calls; i++) {
    const port = 0x3f8 + (i % 8);
    box.data[0] = i & 0xff;
    box.call(i % 2 === 0 ? ExitKind.PioWrite : ExitKind.PioRead, port, 1);
    if (i % 2 === 1 && box.data[0] !== answerFor(port, i)) wrong++;
  }
  parentPort!.postMessage({ wrong, lost: box.lostWakeups });
  box.words[Slot.Status] = StopReason.Requested;
  box.call(ExitKind.Stopped, 0, 0);
}

if (!isMainThread) vcpuSide();
else {
  test(`${VCPUS} vCPU threads x ${CALLS} exits: each is served once, in order, with its data, and no thread stalls`, async () => {
    const served = Array.from({ length: VCPUS }, () => ({ writes: 0, reads: 0, outOfOrder: 0, next: 0 }));
    const boxes = Array.from({ length: VCPUS }, () => new ExitMailbox());
    const reports: Array<Promise<{ wrong: number; lost: number }>> = [];
    const serving = boxes.map((box, v) => {
      const worker = new Worker(__filename, { workerData: { buffer: box.buffer, calls: CALLS } });
      reports.push(new Promise((resolve, reject) => worker.once('message', resolve).once('error', reject)));
      const s = served[v]!;
      return serveMailbox(
        box,
        (kind, port, data) => {
          const i = s.next++;
          if (port !== 0x3f8 + (i % 8) || kind !== (i % 2 === 0 ? ExitKind.PioWrite : ExitKind.PioRead)) s.outOfOrder++;
          if (kind === ExitKind.PioWrite) {
            s.writes++;
            if (data[0] !== (i & 0xff)) s.outOfOrder++;
          } else {
            s.reads++;
            data[0] = answerFor(port, i);
          }
        },
        () => {},
      );
    });
    // A stall is what this pins: when no exit is served for a while, report where each mailbox
    // stood instead of hanging the suite.
    let timer: NodeJS.Timeout | undefined;
    let progress = -1;
    const stalled = new Promise<never>((_, reject) => {
      timer = setInterval(() => {
        const now = served.reduce((n, s) => n + s.next, 0);
        if (now === progress) {
          const where = boxes.map((b, v) => `vCPU ${v} request ${b.words[Slot.Request]} response ${b.words[Slot.Response]} served ${served[v]!.next}`);
          reject(new Error(`no exit served for ${STALL_MS} ms: ${where.join('; ')}`));
        }
        progress = now;
      }, STALL_MS);
    });
    try {
      await Promise.race([Promise.all(serving), stalled]);
    } finally {
      clearInterval(timer);
    }
    const r = await Promise.all(reports);
    for (let v = 0; v < VCPUS; v++) {
      assert.equal(served[v], { writes: CALLS / 2, reads: CALLS / 2, outOfOrder: 0, next: CALLS }, `vCPU ${v}`);
      assert.is(r[v]!.wrong, 0, `vCPU ${v}: reads that got another call's answer`);
    }
    console.log(`# ${VCPUS * CALLS} round trips; notifies the runtime lost (recovered by the bounded waits): ${r.map((x) => x.lost).join(' + ')}`);
  });

  test.run();
}
