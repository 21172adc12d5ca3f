// Watchdog thread for kvm-guest.ts: state[0] is 0 (idle), a run sequence
// number (armed for state[1] ms) or -1 (stop). If an armed run outlives its
// time, the vCPU is kicked out of KVM_RUN.
import { workerData } from 'node:worker_threads';
import { Vcpu, type VcpuHandle } from '../../src/kvm/vcpu';

const data = workerData as { vcpu: VcpuHandle; state: SharedArrayBuffer };
const state = new Int32Array(data.state);
const vcpu = Vcpu.attach(data.vcpu);

for (;;) {
  const seq = Atomics.load(state, 0);
  if (seq === -1) break;
  if (seq === 0) {
    Atomics.wait(state, 0, 0);
    continue;
  }
  if (Atomics.wait(state, 0, seq, Atomics.load(state, 1)) === 'timed-out') {
    vcpu.kick();
    Atomics.wait(state, 0, seq);
  }
}
