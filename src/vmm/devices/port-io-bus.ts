// Port I/O dispatch for the platform devices (the PCI bus claims its own
// ports first). Accesses to ports nobody claims read as all ones and are
// ignored, as on real hardware; the first one of each port is reported.
export interface PortIoDevice {
  /** Reads `data.length` bytes at `port` into data (little-endian). */
  read(port: number, data: Uint8Array): void;
  write(port: number, data: Uint8Array): void;
}

interface Range {
  base: number;
  size: number;
  device: PortIoDevice;
}

export class PortIoBus {
  private readonly ranges: Range[] = [];
  private readonly reported = new Set<number>();
  unknownAccesses = 0;

  constructor(private readonly warn: (msg: string) => void = (m) => void process.stderr.write(`${m}\n`)) {}

  register(base: number, size: number, device: PortIoDevice): void {
    for (const r of this.ranges)
      if (base < r.base + r.size && r.base < base + size) throw new Error(`port range 0x${base.toString(16)} overlaps 0x${r.base.toString(16)}`);
    this.ranges.push({ base, size, device });
  }

  read(port: number, data: Uint8Array): void {
    const r = this.find(port, data.length);
    if (r) r.device.read(port, data);
    else {
      data.fill(0xff);
      this.unknown(port, 'read');
    }
  }

  write(port: number, data: Uint8Array): void {
    const r = this.find(port, data.length);
    if (r) r.device.write(port, data);
    else this.unknown(port, 'write');
  }

  private find(port: number, len: number): Range | undefined {
    for (const r of this.ranges) if (port >= r.base && port + len <= r.base + r.size) return r;
    return undefined;
  }

  private unknown(port: number, what: string): void {
    this.unknownAccesses++;
    if (this.reported.has(port)) return;
    this.reported.add(port);
    this.warn(`xdpvm: guest ${what} of unclaimed I/O port 0x${port.toString(16)} (ignored; reported once per port)`);
  }
}
