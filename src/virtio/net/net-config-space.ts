// The virtio-net device configuration space (§5.1.4): mac, status,
// max_virtqueue_pairs, mtu, speed, duplex. Little-endian, read by the
// driver at any width inside the structure.
import { NetConfig, NetDuplex, NetStatus } from 'virtio-spec-types';

export class NetConfigSpace {
  readonly bytes = new Uint8Array(NetConfig.SIZE);
  private readonly view = new DataView(this.bytes.buffer);
  /** Bumped on every change the driver must notice (§2.5.1). */
  generation = 0;

  constructor(mac: Uint8Array, maxPairs: number, mtu: number, speedMbps: number) {
    this.bytes.set(mac.subarray(0, 6), NetConfig.MAC);
    this.view.setUint16(NetConfig.MAX_VIRTQUEUE_PAIRS, maxPairs, true);
    this.view.setUint16(NetConfig.MTU, mtu, true);
    this.view.setUint32(NetConfig.SPEED, speedMbps >>> 0, true);
    this.bytes[NetConfig.DUPLEX] = NetDuplex.FULL;
    this.setStatus(NetStatus.LINK_UP);
  }

  get status(): number {
    return this.view.getUint16(NetConfig.STATUS, true);
  }

  setStatus(status: number): void {
    this.view.setUint16(NetConfig.STATUS, status, true);
    this.generation++;
  }

  get mac(): Uint8Array {
    return this.bytes.slice(NetConfig.MAC, NetConfig.MAC + 6);
  }

  setMac(mac: Uint8Array): void {
    this.bytes.set(mac.subarray(0, 6), NetConfig.MAC);
    this.generation++;
  }

  read(offset: number, size: 1 | 2 | 4): number {
    if (offset < 0 || offset + size > this.bytes.length) return 0;
    if (size === 1) return this.view.getUint8(offset);
    if (size === 2) return this.view.getUint16(offset, true);
    return this.view.getUint32(offset, true);
  }
}
