// The privileged half of unprivileged mode: attach the default program,
// create one (unbound) AF_XDP socket per queue and put each into the XSKMAP
// slot of its queue. The sockets are then handed to an unprivileged process
// that registers its UMEMs and binds them (inhibit=on,sock-fds=...). The
// program stays attached while this side holds the link.
import { xsk } from '../../native/xsk';
import { sys } from '../../native/sys';
import { OptionError } from './af-xdp-options';
import { XdpAttachment, type XdpMode } from './xdp-attachment';

export interface HelperSetupOptions {
  ifname: string;
  queues: number;
  startQueue: number;
  mode?: XdpMode;
}

export class PreparedSockets {
  private closed = false;

  private constructor(readonly attachment: XdpAttachment, readonly fds: readonly number[]) {}

  static prepare(o: HelperSetupOptions): PreparedSockets {
    if (o.queues < 1) throw new OptionError(`xsk-helper: --queues must be at least 1 (got ${o.queues})`);
    if (o.startQueue < 0) throw new OptionError(`xsk-helper: --start-queue must not be negative (got ${o.startQueue})`);
    const ifindex = xsk.ifNameToIndex(o.ifname);
    if (ifindex === 0) throw new OptionError(`xsk-helper: --ifname: no interface named '${o.ifname}'`);
    const attachment = XdpAttachment.attach(o.ifname, ifindex, o.mode, o.startQueue + o.queues);
    const fds: number[] = [];
    try {
      for (let q = 0; q < o.queues; q++) {
        const fd = xsk.socket();
        fds.push(fd);
        attachment.addSocket(o.startQueue + q, fd);
      }
      return new PreparedSockets(attachment, fds);
    } catch (e) {
      for (const fd of fds) sys.close(fd);
      attachment.detach();
      throw e;
    }
  }

  /** Closes our copies of the sockets and detaches the program. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const fd of this.fds) sys.close(fd);
    this.attachment.detach();
  }
}
