// The benchmarks' sink: an XDP program on the peer interface that counts
// frames per receive queue in an array map and drops them. Counting in XDP
// costs the sink almost nothing, so the sender is what gets measured. Each
// queue's entry also keeps when its first frame arrived (bpf_ktime_get_ns:
// CLOCK_MONOTONIC, the clock of xdpvm's boot timeline), so a bench can date
// the first frame at the peer without polling for it.
import { BpfHelper, BpfProgram, BPF, Reg, XdpAction, XdpMd } from '../bpf/assembler';
import { attachXdpLink, BpfMapType, loadXdpProgram, XdpFlags } from '../bpf/syscalls';
import { xsk } from '../native/xsk';
import { sys } from '../native/sys';

const MAX_QUEUES = 64;
/** Map value: u64 frames, u64 CLOCK_MONOTONIC ns of the first frame (0: none since the last resetFirst). */
const VALUE_BYTES = 16;

function countAndDropProgram(mapFd: number): Uint8Array {
  return new BpfProgram()
    .load(BPF.W, Reg.R2, Reg.R1, XdpMd.rxQueueIndex)
    .store(BPF.W, Reg.R10, Reg.R2, -4) // key on the stack
    .movReg(Reg.R2, Reg.R10)
    .addImm(Reg.R2, -4)
    .loadMapFd(Reg.R1, mapFd)
    .call(BpfHelper.mapLookupElem)
    .jeqImm(Reg.R0, 0, 7) // queue beyond the map: just drop
    .movReg(Reg.R6, Reg.R0) // the entry survives the helper call in a callee-saved register
    .load(BPF.DW, Reg.R1, Reg.R6, 8)
    .jneImm(Reg.R1, 0, 2) // first frame already dated: one load and a branch per frame
    .call(BpfHelper.ktimeGetNs)
    .store(BPF.DW, Reg.R6, Reg.R0, 8)
    .movImm(Reg.R1, 1)
    .atomicAdd(BPF.DW, Reg.R6, Reg.R1, 0)
    .movImm(Reg.R0, XdpAction.DROP)
    .exit()
    .bytes();
}

export class XdpCounter {
  private readonly key = new Uint32Array(1);
  private readonly value = new BigUint64Array(2);

  private constructor(private readonly mapFd: number, private readonly progFd: number, private readonly linkFd: number) {}

  /** Attaches to `ifindex` (in the calling thread's namespace), native mode unless `skb`. */
  static attach(ifindex: number, mode: 'native' | 'skb' = 'native'): XdpCounter {
    const mapFd = xsk.bpfMapCreate(BpfMapType.ARRAY, 4, VALUE_BYTES, MAX_QUEUES, 'xdpvm_count');
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

  private read(queue: number): BigUint64Array {
    this.key[0] = queue;
    this.value.fill(0n);
    xsk.bpfMapLookup(this.mapFd, new Uint8Array(this.key.buffer), new Uint8Array(this.value.buffer));
    return this.value;
  }

  /** Frames counted on receive queue `queue`. */
  count(queue: number): number {
    return Number(this.read(queue)[0]);
  }

  /** Frames counted on all queues. */
  total(): number {
    let sum = 0;
    for (let q = 0; q < MAX_QUEUES; q++) sum += this.count(q);
    return sum;
  }

  /** CLOCK_MONOTONIC ms of the first frame on any queue since the last resetFirst(), or undefined. */
  firstFrameMs(): number | undefined {
    let first: bigint | undefined;
    for (let q = 0; q < MAX_QUEUES; q++) {
      const ns = this.read(q)[1]!;
      if (ns !== 0n && (first === undefined || ns < first)) first = ns;
    }
    return first === undefined ? undefined : Number(first) / 1e6;
  }

  /**
   * Forgets the first frames' times (the counts stay). Call while no frame arrives: an entry is rewritten
   * whole, so a frame counted between the read and the write would be lost.
   */
  resetFirst(): void {
    for (let q = 0; q < MAX_QUEUES; q++) {
      const v = this.read(q);
      if (v[1] === 0n) continue;
      v[1] = 0n;
      xsk.bpfMapUpdate(this.mapFd, new Uint8Array(this.key.buffer), new Uint8Array(v.buffer));
    }
  }

  close(): void {
    sys.close(this.linkFd);
    sys.close(this.progFd);
    sys.close(this.mapFd);
  }
}
