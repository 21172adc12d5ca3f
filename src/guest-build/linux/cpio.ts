// A cpio "newc" (SVR4, no CRC) archive writer, the format the kernel unpacks
// an initramfs from. Entries are written as given (the caller orders them,
// parents before children); every entry gets its own inode number, so no
// hard links; device nodes can be written without being root.
export type CpioEntry =
  | { name: string; kind: 'file'; mode: number; data: Uint8Array; mtime?: number }
  | { name: string; kind: 'dir'; mode: number; mtime?: number }
  | { name: string; kind: 'symlink'; target: string; mtime?: number }
  | { name: string; kind: 'char' | 'block'; mode: number; major: number; minor: number; mtime?: number };

const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;

export class CpioError extends Error {
  override name = 'CpioError';
}

const hex8 = (n: number): string => {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new CpioError(`cpio header field out of range: ${n}`);
  return n.toString(16).padStart(8, '0');
};

const pad4 = (n: number): number => (4 - (n % 4)) % 4;

/** Writes entries to `sink` (which may return a promise to apply back-pressure). */
export class CpioWriter {
  private ino = 1;
  private written = 0;
  private count = 0;
  private finished = false;

  constructor(private readonly sink: (chunk: Uint8Array) => void | Promise<void>) {}

  get bytesWritten(): number {
    return this.written;
  }

  get entries(): number {
    return this.count;
  }

  async add(e: CpioEntry): Promise<void> {
    if (this.finished) throw new CpioError('archive already finished');
    // "/" is written as ".", the archive's root (the kernel applies its mode to the initramfs root).
    const name = e.name === '/' ? '.' : e.name.replace(/^\/+/, '');
    if (!name || name === 'TRAILER!!!' || name.split('/').includes('..')) throw new CpioError(`bad entry name "${e.name}"`);
    let mode: number;
    let data: Uint8Array = new Uint8Array(0);
    let rmaj = 0;
    let rmin = 0;
    let nlink = 1;
    switch (e.kind) {
      case 'file':
        mode = S_IFREG | (e.mode & 0o7777);
        data = e.data;
        break;
      case 'dir':
        mode = S_IFDIR | (e.mode & 0o7777);
        nlink = 2;
        break;
      case 'symlink':
        mode = S_IFLNK | 0o777;
        data = Buffer.from(e.target, 'utf8');
        break;
      case 'char':
      case 'block':
        mode = (e.kind === 'char' ? S_IFCHR : S_IFBLK) | (e.mode & 0o7777);
        rmaj = e.major;
        rmin = e.minor;
        break;
    }
    await this.entry(name, mode, nlink, e.mtime ?? 0, data, rmaj, rmin);
  }

  /** Writes the trailer and pads the archive to a multiple of 512 bytes. */
  async finish(): Promise<void> {
    if (this.finished) return;
    await this.entry('TRAILER!!!', 0, 1, 0, new Uint8Array(0), 0, 0, 0);
    this.finished = true;
    const tail = (512 - (this.written % 512)) % 512;
    if (tail) await this.out(new Uint8Array(tail));
  }

  private async entry(
    name: string,
    mode: number,
    nlink: number,
    mtime: number,
    data: Uint8Array,
    rmaj: number,
    rmin: number,
    ino = this.ino++,
  ): Promise<void> {
    const nameBytes = Buffer.from(`${name}\0`, 'utf8');
    const header =
      '070701' +
      hex8(ino) +
      hex8(mode) +
      hex8(0) + // uid
      hex8(0) + // gid
      hex8(nlink) +
      hex8(mtime) +
      hex8(data.length) +
      hex8(0) + // devmajor
      hex8(0) + // devminor
      hex8(rmaj) +
      hex8(rmin) +
      hex8(nameBytes.length) +
      hex8(0); // check
    const head = Buffer.concat([Buffer.from(header, 'ascii'), nameBytes, Buffer.alloc(pad4(110 + nameBytes.length))]);
    await this.out(head);
    if (data.length > 0) {
      await this.out(data);
      const p = pad4(data.length);
      if (p) await this.out(new Uint8Array(p));
    }
    if (name !== 'TRAILER!!!') this.count++;
  }

  private async out(chunk: Uint8Array): Promise<void> {
    this.written += chunk.length;
    await this.sink(chunk);
  }
}
