// The one part of the i8042 keyboard controller a guest needs from us:
// writing 0xFE to the command port pulses the CPU reset line (how Linux
// reboots by default); status reads say "no data, input buffer empty".
import type { PortIoDevice } from './port-io-bus';

export const I8042_DATA = 0x60;
export const I8042_COMMAND = 0x64;
const CMD_PULSE_RESET = 0xfe;

export class I8042Reset implements PortIoDevice {
  constructor(private readonly onReset: () => void) {}

  read(_port: number, data: Uint8Array): void {
    data.fill(0);
  }

  write(port: number, data: Uint8Array): void {
    if (port === I8042_COMMAND && data[0] === CMD_PULSE_RESET) this.onReset();
  }
}
