// One vhost-user message as received (header, payload, fds) and the
// payload decoders (vhost-user.rst "Payload"). Every decoder checks the
// size first: a payload of the wrong size is a ProtocolError, never a read
// past the payload. The message owns the fds that came with it until a
// handler takes them; the connection closes the rest after handling.
import { sys } from '../native/sys';
import {
  CONFIG_HEADER,
  HEADER_SIZE,
  HeaderFlags,
  MAX_CONFIG_SIZE,
  MAX_MEM_REGIONS,
  MEM_REGION_SIZE,
  MEM_TABLE_HEADER,
  requestName,
  U64_SIZE,
  VRING_ADDR_SIZE,
  VRING_STATE_SIZE,
} from './protocol';

/**
 * A message the back end refuses. `fatal`: the byte stream or the session
 * cannot be trusted any more (bad framing): close the connection even when
 * the front end asked for a REPLY_ACK.
 */
export class ProtocolError extends Error {
  override name = 'ProtocolError';
  constructor(
    message: string,
    readonly fatal = false,
  ) {
    super(message);
  }
}

export interface VringState {
  index: number;
  num: number;
}

export interface VringAddress {
  index: number;
  flags: number;
  /** Front-end user addresses (vhost-user.rst "A vring address description"). */
  desc: bigint;
  used: bigint;
  avail: bigint;
  log: bigint;
}

export interface MemRegionDescriptor {
  guestAddr: bigint;
  size: bigint;
  userAddr: bigint;
  mmapOffset: bigint;
}

export interface ConfigAccess {
  offset: number;
  size: number;
  flags: number;
  data: Uint8Array;
}

export class Message {
  private readonly taken: boolean[];
  private readonly view: DataView;

  constructor(
    readonly request: number,
    readonly flags: number,
    readonly payload: Uint8Array,
    readonly fds: readonly number[],
  ) {
    this.taken = fds.map(() => false);
    this.view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  }

  get name(): string {
    return requestName(this.request);
  }

  get needReply(): boolean {
    return (this.flags & HeaderFlags.NeedReply) !== 0;
  }

  /** Hands fd `i` to the caller, who owns it from now on. */
  takeFd(i: number): number {
    if (i < 0 || i >= this.fds.length || this.taken[i]) throw new Error(`${this.name}: fd ${i} not available`);
    this.taken[i] = true;
    return this.fds[i]!;
  }

  /** Closes every fd no handler took (fds on messages that carry none, extra fds, refused messages). */
  closeUntaken(): void {
    this.fds.forEach((fd, i) => {
      if (this.taken[i]) return;
      this.taken[i] = true;
      try {
        sys.close(fd);
      } catch {
        // Already gone: nothing to release.
      }
    });
  }

  expectSize(size: number): void {
    if (this.payload.length !== size) throw new ProtocolError(`${this.name}: payload of ${this.payload.length} bytes, expected ${size}`);
  }

  expectFds(count: number): void {
    if (this.fds.length !== count) throw new ProtocolError(`${this.name}: ${this.fds.length} fds, expected ${count}`);
  }

  u64(): bigint {
    this.expectSize(U64_SIZE);
    return this.view.getBigUint64(0, true);
  }

  vringState(): VringState {
    this.expectSize(VRING_STATE_SIZE);
    return { index: this.view.getUint32(0, true), num: this.view.getUint32(4, true) };
  }

  vringAddress(): VringAddress {
    this.expectSize(VRING_ADDR_SIZE);
    const v = this.view;
    return {
      index: v.getUint32(0, true),
      flags: v.getUint32(4, true),
      desc: v.getBigUint64(8, true),
      used: v.getBigUint64(16, true),
      avail: v.getBigUint64(24, true),
      log: v.getBigUint64(32, true),
    };
  }

  /** SET_MEM_TABLE: num regions, padding, then the regions in use (QEMU sends only those; the full 8 are accepted too). */
  memoryTable(): MemRegionDescriptor[] {
    if (this.payload.length < MEM_TABLE_HEADER) throw new ProtocolError(`${this.name}: payload of ${this.payload.length} bytes`);
    const n = this.view.getUint32(0, true);
    if (n < 1 || n > MAX_MEM_REGIONS) throw new ProtocolError(`${this.name}: ${n} regions (1 to ${MAX_MEM_REGIONS} supported)`);
    const need = MEM_TABLE_HEADER + n * MEM_REGION_SIZE;
    const full = MEM_TABLE_HEADER + MAX_MEM_REGIONS * MEM_REGION_SIZE;
    if (this.payload.length !== need && this.payload.length !== full)
      throw new ProtocolError(`${this.name}: payload of ${this.payload.length} bytes for ${n} regions`);
    const out: MemRegionDescriptor[] = [];
    for (let i = 0; i < n; i++) {
      const o = MEM_TABLE_HEADER + i * MEM_REGION_SIZE;
      out.push({
        guestAddr: this.view.getBigUint64(o, true),
        size: this.view.getBigUint64(o + 8, true),
        userAddr: this.view.getBigUint64(o + 16, true),
        mmapOffset: this.view.getBigUint64(o + 24, true),
      });
    }
    return out;
  }

  /** GET_CONFIG / SET_CONFIG: offset, size, flags, then `size` bytes. */
  config(): ConfigAccess {
    if (this.payload.length < CONFIG_HEADER) throw new ProtocolError(`${this.name}: payload of ${this.payload.length} bytes`);
    const offset = this.view.getUint32(0, true);
    const size = this.view.getUint32(4, true);
    const flags = this.view.getUint32(8, true);
    if (size > MAX_CONFIG_SIZE) throw new ProtocolError(`${this.name}: config size ${size} (at most ${MAX_CONFIG_SIZE})`);
    if (this.payload.length !== CONFIG_HEADER + size)
      throw new ProtocolError(`${this.name}: config size ${size} with a payload of ${this.payload.length} bytes`);
    return { offset, size, flags, data: this.payload.subarray(CONFIG_HEADER) };
  }
}

/** A reply (or any message) on the wire: header + payload. */
export function encodeMessage(request: number, flags: number, payload: Uint8Array = new Uint8Array(0)): Uint8Array {
  const out = new Uint8Array(HEADER_SIZE + payload.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, request, true);
  v.setUint32(4, flags, true);
  v.setUint32(8, payload.length, true);
  out.set(payload, HEADER_SIZE);
  return out;
}

export function u64Payload(value: bigint): Uint8Array {
  const b = new Uint8Array(U64_SIZE);
  new DataView(b.buffer).setBigUint64(0, BigInt.asUintN(64, value), true);
  return b;
}

export function vringStatePayload(index: number, num: number): Uint8Array {
  const b = new Uint8Array(VRING_STATE_SIZE);
  const v = new DataView(b.buffer);
  v.setUint32(0, index >>> 0, true);
  v.setUint32(4, num >>> 0, true);
  return b;
}

export function configPayload(offset: number, flags: number, data: Uint8Array): Uint8Array {
  const b = new Uint8Array(CONFIG_HEADER + data.length);
  const v = new DataView(b.buffer);
  v.setUint32(0, offset >>> 0, true);
  v.setUint32(4, data.length, true);
  v.setUint32(8, flags >>> 0, true);
  b.set(data, CONFIG_HEADER);
  return b;
}
