// The default XDP program: frames received on queue q go to the AF_XDP socket
// at XSKMAP[q]; queues without a socket fall through to the normal stack.
import { BpfHelper, BpfProgram, BPF, Reg, XdpAction, XdpMd } from '../../bpf/assembler';

export function redirectByQueueProgram(xskMapFd: number): Uint8Array {
  return new BpfProgram()
    .load(BPF.W, Reg.R2, Reg.R1, XdpMd.rxQueueIndex) // key = ctx->rx_queue_index
    .loadMapFd(Reg.R1, xskMapFd)
    .movImm(Reg.R3, XdpAction.PASS) // action when the map has no socket for this queue
    .call(BpfHelper.redirectMap)
    .exit()
    .bytes();
}
