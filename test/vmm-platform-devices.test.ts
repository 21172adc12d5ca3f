// The port-I/O platform devices: the 8250 console, debug exit, i8042 reset,
// and the bus's answer for ports nobody claims.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DebugExit, DEBUG_EXIT_PORT } from '../src/vmm/devices/debug-exit';
import { I8042_COMMAND, I8042Reset } from '../src/vmm/devices/i8042-reset';
import { PortIoBus } from '../src/vmm/devices/port-io-bus';
import { COM1_BASE, Serial8250 } from '../src/vmm/devices/serial-8250';

const b = (v: number): Uint8Array => Uint8Array.of(v);

function rig(): { bus: PortIoBus; out: number[]; irqs: boolean[]; serial: Serial8250; warnings: string[]; exits: number[]; resets: number[] } {
  const out: number[] = [];
  const irqs: boolean[] = [];
  const warnings: string[] = [];
  const exits: number[] = [];
  const resets: number[] = [];
  const bus = new PortIoBus((m) => warnings.push(m));
  const serial = new Serial8250(COM1_BASE, (x) => out.push(x), (l) => irqs.push(l));
  bus.register(COM1_BASE, 8, serial);
  bus.register(DEBUG_EXIT_PORT, 1, new DebugExit((s) => exits.push(s)));
  bus.register(I8042_COMMAND, 1, new I8042Reset(() => resets.push(1)));
  return { bus, out, irqs, serial, warnings, exits, resets };
}

function rd(bus: PortIoBus, port: number): number {
  const d = new Uint8Array(1);
  bus.read(port, d);
  return d[0]!;
}

test('bytes written to THR reach the console; LSR always says the transmitter is empty', () => {
  const { bus, out } = rig();
  for (const ch of Buffer.from('hi\n')) bus.write(COM1_BASE, b(ch));
  assert.equal(Buffer.from(out).toString(), 'hi\n');
  assert.is(rd(bus, COM1_BASE + 5) & 0x60, 0x60);
});

test('DLAB selects the divisor latch instead of THR/IER', () => {
  const { bus, out } = rig();
  bus.write(COM1_BASE + 3, b(0x80));
  bus.write(COM1_BASE, b(0x01));
  bus.write(COM1_BASE + 1, b(0x00));
  assert.is(rd(bus, COM1_BASE), 0x01);
  assert.equal(out, [], 'divisor writes are not output');
  bus.write(COM1_BASE + 3, b(0x03));
  bus.write(COM1_BASE + 7, b(0x5a));
  assert.is(rd(bus, COM1_BASE + 7), 0x5a, 'scratch register');
});

test('received bytes set DR and, with RDI enabled, raise IRQ 4 until read', () => {
  const { bus, serial, irqs } = rig();
  bus.write(COM1_BASE + 1, b(0x01));
  serial.feed(Uint8Array.of(0x41));
  assert.is(rd(bus, COM1_BASE + 5) & 1, 1);
  assert.is(rd(bus, COM1_BASE + 2) & 0x0f, 0x04);
  assert.equal(irqs, [true]);
  assert.is(rd(bus, COM1_BASE), 0x41);
  assert.equal(irqs, [true, false]);
  assert.is(rd(bus, COM1_BASE + 5) & 1, 0);
});

test('THR-empty interrupt fires on enable and is cleared by reading IIR', () => {
  const { bus, irqs } = rig();
  bus.write(COM1_BASE + 1, b(0x02));
  assert.equal(irqs, [true]);
  assert.is(rd(bus, COM1_BASE + 2) & 0x0f, 0x02);
  assert.equal(irqs, [true, false]);
  assert.is(rd(bus, COM1_BASE + 2) & 0x0f, 0x01, 'no interrupt pending');
});

test('debug exit reports the status byte; i8042 0xFE resets', () => {
  const { bus, exits, resets } = rig();
  bus.write(DEBUG_EXIT_PORT, b(3));
  bus.write(I8042_COMMAND, b(0xaa));
  bus.write(I8042_COMMAND, b(0xfe));
  assert.equal(exits, [3]);
  assert.equal(resets, [1]);
});

test('unclaimed ports read as ones, writes are dropped, and each port is reported once', () => {
  const { bus, warnings } = rig();
  assert.is(rd(bus, 0x80), 0xff);
  bus.write(0x80, b(1));
  bus.write(0x80, b(2));
  bus.write(0x70, b(2));
  assert.is(bus.unknownAccesses, 4);
  assert.is(warnings.length, 2);
  assert.match(warnings[0]!, /0x80/);
});

test('overlapping registrations are refused', () => {
  const { bus } = rig();
  assert.throws(() => bus.register(COM1_BASE + 4, 2, new DebugExit(() => {})), /overlaps/);
});

test.run();
