// The benchmarks' sink: an XDP program on the peer interface that counts
// frames per receive queue in an array map and drops them. Counting in XDP
// costs the sink almost nothing, so the sender is what gets measured.
import { BpfHelper, BpfProgram, BPF, Reg, XdpAction, XdpMd } from '../bpf/assembler';
import { attachXdpLink, BpfMapType, loadXdpProgram, XdpFlags } from '../bpf/syscalls';
import { xsk } from '../native/xsk';
import { sys } from '../native/sys';

const MAX_QUEUES = 64;

function countAndDropProgram(mapFd: number): Uint8Array {
  return new BpfProgram()
    .load(BPF.W, Reg.R2, Reg.R1, XdpMd.rxQueueIndex)
    .store(BPF.W, Reg.R10, Reg.R2, -4) // key on the stack
    .movReg(Reg.R2, Reg.R10)
    .addImm(Reg.R2, -4)
    .loadMapFd(Reg.R1, mapFd)
    .call(BpfHelper.mapLookupElem)
    .jeqImm(Reg.R0, 0, 2) // queue beyond the map: just drop
    .movImm(Reg.R1, 1)
    .atomicAdd(BPF.DW, Reg.R0, Reg.R1, 0)
    .movImm(Reg.R0, XdpAction.DROP)
    .exit()
    .bytes();
}

export class XdpCounter {
  private readonly key = new Uint32Array(1);
  private readonly value = new BigUint64Array(1);

  private constructor(private readonly mapFd: number, private readonly progFd: number, private readonly linkFd: number) {}

  /** Attaches to `ifindex` (in the calling thread's namespace), native mode unless `skb`. */
  static attach(ifindex: number, mode: 'native' | 'skb' = 'native'): XdpCounter {
    const mapFd = xsk.bpfMapCreate(BpfMapType.ARRAY, 4, 8, MAX_QUEUES, 'xdpvm_count');
    let progFd = -1;
    try {
      progFd = loadXdpProgram(countAndDropProgram(mapFd), 'xdpvm_count');
      const linkFd = attachXdpLink(progFd, ifindex, mode === 'native' ? XdpFlags.DRV_MODE : XdpFlags.SKB_MODE);
      return new XdpCounter(mapFd, progFd, linkFd);
    } catch (e) {
      if (progFd >= 0) sys.close(progFd);
      sys.close(mapFd);
      throw e;
    }
  }

  /** Frames counted on receive queue `queue`. */
  count(queue: number): number {
    this.key[0] = queue;
    this.value[0] = 0n;
    xsk.bpfMapLookup(this.mapFd, new Uint8Array(this.key.buffer), new Uint8Array(this.value.buffer));
    return Number(this.value[0]);
  }

  /** Frames counted on all queues. */
  total(): number {
    let sum = 0;
    for (let q = 0; q < MAX_QUEUES; q++) sum += this.count(q);
    return sum;
  }

  close(): void {
    sys.close(this.linkFd);
    sys.close(this.progFd);
    sys.close(this.mapFd);
  }
}
