// The console protocol of the Linux guest image's /init: how a command is
// passed on the kernel command line (xdpvm.* parameters, the command in
// base64) and how its result is read back from the console output
// (XDPVM-BEGIN ... XDPVM-END rc=N, or XDPVM-ERROR <what>).

export interface GuestParams {
  /** Shell command run by /init (busybox sh). */
  cmd: string;
  /** ADDR/PREFIX for eth0. */
  ip?: string;
  /** Number of 2 MiB huge pages, mounted on /dev/hugepages. */
  hugepages?: number;
  /** Hand the virtio-net PCI device to uio_pci_generic or vfio-pci ($XDPVM_PCI in the command). */
  bind?: 'uio' | 'vfio';
  /** Console log level while the command runs (init's default: 4). */
  loglevel?: number;
}

/** x86's COMMAND_LINE_SIZE, terminating NUL included. */
export const KERNEL_CMDLINE_MAX = 2048;

/** The xdpvm.* kernel parameters for `p`. */
export function guestKernelParams(p: GuestParams): string[] {
  const out = [`xdpvm.cmd=${Buffer.from(p.cmd, 'utf8').toString('base64')}`];
  if (p.ip !== undefined) out.push(`xdpvm.ip=${p.ip}`);
  if (p.hugepages !== undefined) out.push(`xdpvm.hugepages=${p.hugepages}`);
  if (p.bind !== undefined) out.push(`xdpvm.bind=${p.bind}`);
  if (p.loglevel !== undefined) out.push(`xdpvm.loglevel=${p.loglevel}`);
  return out;
}

/** A whole kernel command line: console on ttyS0, no reboot loop on panic, the xdpvm.* parameters and `extra`. */
export function guestKernelCmdline(p: GuestParams, extra: readonly string[] = []): string {
  const line = ['console=ttyS0', 'panic=-1', ...extra, ...guestKernelParams(p)].join(' ');
  if (line.length >= KERNEL_CMDLINE_MAX) {
    throw new Error(`kernel command line is ${line.length} bytes, the limit is ${KERNEL_CMDLINE_MAX - 1}: shorten the command`);
  }
  return line;
}

export interface GuestResult {
  /** XDPVM-BEGIN was seen. */
  began: boolean;
  /** The command's exit status from XDPVM-END rc=N, if the guest got there. */
  rc?: number;
  /** The text of an XDPVM-ERROR line. */
  error?: string;
  /** The command's output: the lines between XDPVM-BEGIN and XDPVM-END (or the end of the console). */
  output: string;
  /** Seconds from kernel start to the command, from init's "ready after N s" line. */
  readyAfter?: number;
}

export function parseGuestConsole(consoleText: string): GuestResult {
  const lines = consoleText.replace(/\r/g, '').split('\n');
  const res: GuestResult = { began: false, output: '' };
  const out: string[] = [];
  for (const line of lines) {
    const ready = /^xdpvm-init: ready after ([\d.]+) s/.exec(line);
    if (ready) res.readyAfter = Number(ready[1]);
    const err = /^XDPVM-ERROR (.*)$/.exec(line);
    if (err && res.error === undefined) res.error = err[1]!;
    if (!res.began) {
      if (line === 'XDPVM-BEGIN') res.began = true;
      continue;
    }
    if (res.rc !== undefined) continue;
    const end = /^XDPVM-END rc=(\d+)$/.exec(line);
    if (end) res.rc = Number(end[1]);
    else out.push(line);
  }
  res.output = out.join('\n');
  return res;
}
