// KVM_RUN from a worker thread: the worker attaches to the vCPU (fd plus an
// alias of kvm_run) and to guest RAM (an alias of the same mapping), runs
// the guest, and sees what the main thread wrote; the main thread sees what
// the guest wrote. Then the guest spins and the main thread kicks the vCPU
// out of KVM_RUN.
import * as assert from 'uvu/assert';
import { test } from 'uvu';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { ExitReason, GuestRam, Vcpu, type GuestRamHandle, type VcpuHandle } from '../src/kvm';
import { kvmTest, realModeGuest } from './support/kvm-guest';

// prettier-ignore
const GUEST = [
  0xc7, 0x06, 0x00, 0x30, 0x42, 0x42, // mov word [0x3000], 0x4242
  0x66, 0xa1, 0x08, 0x30,             // mov eax, [0x3008]
  0x66, 0xe7, 0x70,                   // out 0x70, eax
  0xeb, 0xfe,                         // jmp $   (until kicked)
];

interface FirstExit {
  reason: number;
  port: number;
  value: number;
  seenByWorker: number;
}

function workerMain(): void {
  const data = workerData as { vcpu: VcpuHandle; ram: GuestRamHandle };
  const vcpu = Vcpu.attach(data.vcpu);
  const ram = GuestRam.alias(data.ram);
  vcpu.bindThread();
  const reason = vcpu.run();
  const first: FirstExit = {
    reason,
    port: vcpu.ioPort,
    value: vcpu.ioValue,
    seenByWorker: new DataView(ram.buffer).getUint16(0x3000, true),
  };
  parentPort!.postMessage(first);
  const t0 = Date.now();
  const second = vcpu.run();
  vcpu.unbindThread();
  parentPort!.postMessage({ reason: second, ms: Date.now() - t0 });
}

function next<T>(w: Worker): Promise<T> {
  return new Promise((resolve, reject) => {
    w.once('message', resolve);
    w.once('error', reject);
  });
}

if (isMainThread) {
  kvmTest('a worker thread runs the vCPU over shared guest memory and is kicked out of KVM_RUN', async () => {
    const g = realModeGuest(GUEST);
    g.vcpu.unbindThread(); // the worker is the vCPU thread here
    try {
      new DataView(g.ram.buffer).setUint32(0x3008, 0x600dcafe, true);
      const w = new Worker(__filename, { workerData: { vcpu: g.vcpu.handle(), ram: g.ram.handle() } });
      const first = await next<FirstExit>(w);
      assert.is(first.reason, ExitReason.Io);
      assert.is(first.port, 0x70);
      assert.is(first.value, 0x600dcafe, 'guest read what the main thread wrote');
      assert.is(first.seenByWorker, 0x4242, 'worker sees the guest write through its alias');
      assert.is(new DataView(g.ram.buffer).getUint16(0x3000, true), 0x4242, 'main thread sees it too');

      const secondP = next<{ reason: number; ms: number }>(w);
      await new Promise((r) => setTimeout(r, 200)); // let it spin inside KVM_RUN
      g.vcpu.kick();
      const second = await secondP;
      assert.is(second.reason, ExitReason.Intr);
      assert.ok(second.ms >= 150, `it was spinning in the guest (${second.ms} ms)`);
      assert.not.ok(g.vcpu.immediateExit, 'the vCPU thread cleared immediate_exit');
      assert.is(g.vcpu.getRegs().rip, 0x100dn, 'stopped in the spin loop');
      await new Promise((r) => w.once('exit', r));
    } finally {
      g.close();
    }
  });
  test.run();
} else {
  workerMain();
}
