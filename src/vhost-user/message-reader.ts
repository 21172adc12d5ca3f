// Framing: reads whole vhost-user messages off a stream socket. Reads
// exactly the bytes a message needs (header, then `size` payload bytes), so
// fds the kernel delivers with them belong to that message. Bad framing
// (wrong version, the reply flag on a request, a size over MAX_PAYLOAD, more
// than MAX_FDS fds, EOF inside a message) is a fatal ProtocolError: the
// stream can no longer be trusted. Every fd received ends up either in the
// returned Message or closed.
import { Message, ProtocolError } from './message';
import { HEADER_SIZE, HeaderFlags, MAX_FDS, MAX_PAYLOAD } from './protocol';
import { unixSocket } from './unix-socket';
import { sys } from '../native/sys';

function closeAll(fds: readonly number[]): void {
  for (const fd of fds) {
    try {
      sys.close(fd);
    } catch {
      // Already closed.
    }
  }
}

export class MessageReader {
  constructor(
    private readonly fd: number,
    /** Readable when the reader must give up (the server is closing). */
    private readonly wakeFd: number,
  ) {}

  /** The next message; undefined on a clean EOF (between messages) or when woken. */
  async next(): Promise<Message | undefined> {
    const fds: number[] = [];
    try {
      const header = await this.read(HEADER_SIZE, fds, true);
      if (!header) {
        closeAll(fds.splice(0));
        return undefined;
      }
      const v = new DataView(header.buffer, header.byteOffset, HEADER_SIZE);
      const request = v.getUint32(0, true);
      const flags = v.getUint32(4, true);
      const size = v.getUint32(8, true);
      if ((flags & HeaderFlags.VersionMask) !== HeaderFlags.Version)
        throw new ProtocolError(`request ${request}: protocol version ${flags & HeaderFlags.VersionMask} (only 1 is known)`, true);
      if ((flags & HeaderFlags.Reply) !== 0) throw new ProtocolError(`request ${request}: the reply flag is set on a request`, true);
      if (size > MAX_PAYLOAD) throw new ProtocolError(`request ${request}: payload of ${size} bytes (at most ${MAX_PAYLOAD})`, true);
      const payload = size > 0 ? await this.read(size, fds, false) : new Uint8Array(0);
      if (!payload) {
        closeAll(fds.splice(0));
        return undefined;
      }
      return new Message(request, flags, payload, fds.splice(0));
    } catch (e) {
      closeAll(fds.splice(0));
      throw e;
    }
  }

  /**
   * Exactly `n` bytes, appending received fds to `fds`. Undefined when woken,
   * or on EOF before the first byte of a message (`atStart`).
   */
  private async read(n: number, fds: number[], atStart: boolean): Promise<Uint8Array | undefined> {
    const out = new Uint8Array(n);
    let got = 0;
    while (got < n) {
      let r;
      try {
        r = await unixSocket.unixRecvAsync(this.fd, n - got, MAX_FDS - fds.length, this.wakeFd);
      } catch (e) {
        const code = (e as { code?: string }).code;
        if (code === 'EMSGSIZE') throw new ProtocolError(`more than ${MAX_FDS} fds with one message`, true);
        if (code === 'ECONNRESET') return undefined;
        throw new ProtocolError(`receive failed: ${(e as Error).message}`, true);
      }
      fds.push(...r.fds);
      if (r.woken) return undefined;
      if (r.eof) {
        if (atStart && got === 0) return undefined;
        throw new ProtocolError(`connection closed inside a message (${got} of ${n} bytes)`, true);
      }
      out.set(r.bytes, got);
      got += r.bytes.length;
    }
    return out;
  }
}
