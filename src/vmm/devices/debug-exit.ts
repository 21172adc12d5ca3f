// A debug-exit port (as QEMU's isa-debug-exit at 0x501): the guest writes a
// status byte and the VMM stops with it. Used by the bare-metal test guest.
import type { PortIoDevice } from './port-io-bus';

export const DEBUG_EXIT_PORT = 0x501;

export class DebugExit implements PortIoDevice {
  constructor(private readonly onExit: (status: number) => void) {}

  read(_port: number, data: Uint8Array): void {
    data.fill(0xff);
  }

  write(_port: number, data: Uint8Array): void {
    this.onExit(data[0]!);
  }
}
