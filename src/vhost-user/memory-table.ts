// The front end's memory table (SET_MEM_TABLE): each region's fd mapped
// with its mmap_offset, a bounds-checked GuestMemory over the mappings for
// this thread, the same memory for the I/O workers, and the translation of
// front-end user addresses (where vring addresses live, vhost-user.rst
// "Memory access") to guest-physical addresses (where descriptors point).
//
// A table is validated as a whole and mapped before it replaces anything:
// sizes, overflow, 8-byte alignment the accessor needs, no overlap in guest
// or user address space, an fd that is a regular file at least as long as
// the region. The fds are not kept (the mappings hold the memory).
//
// A memfd is sealed against shrinking when it is not already (QEMU's
// memory-backend-memfd seals it itself): a front end that truncated a file
// under our mappings would turn the next access into SIGBUS. Files that
// cannot be sealed (hugetlbfs, /dev/shm files) are accepted, like every
// vhost-user back end does, and keep that one risk.
import { GuestMemory } from '../memory/guest-memory';
import type { SharedRegion } from '../io/io-thread-protocol';
import { ProtocolError, type MemRegionDescriptor } from './message';
import { Seal, unixSocket } from './unix-socket';
import { sys } from '../native/sys';

/** Largest table (4 TiB in all): beyond any guest this machine class runs, and a bound on the pieces below. */
const MAX_TABLE = 2n ** 42n;
/**
 * An ArrayBuffer over external memory and a typed array hold less than
 * 4 GiB here: a region of 4 GiB or more is mapped in pieces cut at
 * multiples of 2 GiB in guest-physical space. A buffer straddling such a
 * cut is refused by the accessor; guests allocate buffers in naturally
 * aligned blocks, which never straddle one.
 */
const VIEW_LIMIT = 2 ** 32;
const PIECE = 2 ** 31;
const GPA_LIMIT = 2n ** 53n;
const U64_LIMIT = 2n ** 64n;
const ALIGN = 8n;

export interface TableRegion {
  readonly gpa: number;
  readonly size: number;
  readonly userAddr: bigint;
}

/** One mapping: `length` bytes of guest memory at `gpa`, `skip` bytes into `mapping` (page-aligned). */
interface Piece {
  readonly gpa: number;
  readonly length: number;
  readonly mapping: ArrayBuffer;
  readonly skip: number;
}

/** [gpa, length, file offset] of the pieces of a region. */
function cut(gpa: number, size: number, fileOffset: number): [number, number, number][] {
  if (size < VIEW_LIMIT) return [[gpa, size, fileOffset]];
  const out: [number, number, number][] = [];
  for (let at = gpa; at < gpa + size; ) {
    const end = Math.min((Math.floor(at / PIECE) + 1) * PIECE, gpa + size);
    out.push([at, end - at, fileOffset + (at - gpa)]);
    at = end;
  }
  return out;
}

export class MemoryTable {
  private released = false;
  readonly memory: GuestMemory;

  private constructor(
    readonly regions: readonly TableRegion[],
    private readonly pieces: readonly Piece[],
  ) {
    this.memory = new GuestMemory(pieces.map((p) => ({ gpa: p.gpa, bytes: new Uint8Array(p.mapping, p.skip, p.length) })));
  }

  /**
   * Validates and maps a table. Does not take the fds (the caller closes
   * them). Throws ProtocolError with nothing left mapped.
   */
  static map(descs: readonly MemRegionDescriptor[], fds: readonly number[]): MemoryTable {
    if (fds.length !== descs.length) throw new ProtocolError(`SET_MEM_TABLE: ${descs.length} regions but ${fds.length} fds`);
    descs.forEach((d, i) => {
      const bad = (why: string): never => {
        throw new ProtocolError(`SET_MEM_TABLE: region ${i}: ${why}`);
      };
      if (d.size === 0n || d.size > MAX_TABLE) bad(`size ${d.size} (1 byte to 4 TiB)`);
      if (d.guestAddr + d.size > GPA_LIMIT) bad('guest addresses beyond 2^53');
      if (d.userAddr + d.size > U64_LIMIT) bad('user addresses wrap around');
      if (d.mmapOffset + d.size > GPA_LIMIT) bad('mmap offset beyond 2^53');
      if (d.guestAddr % ALIGN !== 0n || d.mmapOffset % ALIGN !== 0n) bad('guest address and mmap offset must be multiples of 8');
      for (let j = 0; j < i; j++) {
        const o = descs[j]!;
        if (d.guestAddr < o.guestAddr + o.size && o.guestAddr < d.guestAddr + d.size) bad(`overlaps region ${j} in guest memory`);
        if (d.userAddr < o.userAddr + o.size && o.userAddr < d.userAddr + d.size) bad(`overlaps region ${j} in user addresses`);
      }
    });
    const total = descs.reduce((sum, d) => sum + d.size, 0n);
    if (total > MAX_TABLE) throw new ProtocolError(`SET_MEM_TABLE: ${total} bytes in all (at most 4 TiB)`);
    const page = unixSocket.pageSize();
    const pieces: Piece[] = [];
    try {
      descs.forEach((d, i) => {
        const fd = fds[i]!;
        const size = Number(d.size);
        const offset = Number(d.mmapOffset);
        let info;
        try {
          info = unixSocket.fdInfo(fd);
        } catch (e) {
          throw new ProtocolError(`SET_MEM_TABLE: region ${i}: fd: ${(e as Error).message}`);
        }
        if (info.kind !== 'file') throw new ProtocolError(`SET_MEM_TABLE: region ${i}: the fd is not a memory file (${info.kind})`);
        if (info.size < offset + size)
          throw new ProtocolError(`SET_MEM_TABLE: region ${i}: the file has ${info.size} bytes, the region ends at ${offset + size}`);
        if (info.seals >= 0 && (info.seals & Seal.Shrink) === 0) unixSocket.fdAddSeals(fd, Seal.Shrink);
        for (const [gpa, length, fileOffset] of cut(Number(d.guestAddr), size, offset)) {
          const aligned = Math.floor(fileOffset / page) * page;
          const skip = fileOffset - aligned;
          let mapping: ArrayBuffer;
          try {
            mapping = unixSocket.mapSharedFd(fd, aligned, skip + length);
          } catch (e) {
            throw new ProtocolError(`SET_MEM_TABLE: region ${i}: ${(e as Error).message}`);
          }
          pieces.push({ gpa, length, mapping, skip });
        }
      });
      const regions = descs.map((d) => ({ gpa: Number(d.guestAddr), size: Number(d.size), userAddr: d.userAddr }));
      return new MemoryTable(regions, pieces);
    } catch (e) {
      for (const p of pieces) sys.unmap(p.mapping);
      throw e;
    }
  }

  /** The memory as I/O workers alias it. */
  shared(): SharedRegion[] {
    return this.pieces.map((p) => ({ gpa: p.gpa, address: sys.addressOf(p.mapping), length: p.length, offset: p.skip }));
  }

  /** Guest-physical address of [userAddr, userAddr + len) when it lies in one region, else -1. */
  translate(userAddr: bigint, len: number): number {
    const l = BigInt(len);
    for (const r of this.regions) {
      if (userAddr >= r.userAddr && userAddr + l <= r.userAddr + BigInt(r.size)) return r.gpa + Number(userAddr - r.userAddr);
    }
    return -1;
  }

  /** Total bytes mapped. */
  get bytes(): number {
    return this.regions.reduce((s, r) => s + r.size, 0);
  }

  /** Unmaps everything (detaching this thread's views). The I/O workers must have stopped using it. */
  release(): void {
    if (this.released) return;
    this.released = true;
    for (const p of this.pieces) sys.unmap(p.mapping);
  }
}
