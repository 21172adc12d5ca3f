// Frames between the in-process test driver (its device on one end of a
// veth) and an AF_XDP queue on the peer end, in chunks, waiting for the
// kernel between them: what the end-to-end device tests do both ways.
import type { NetBackendQueue } from '../../src/backend/net-backend';
import type { ReceivedFrame, SendOptions, VirtioNetTestDriver } from '../../src/test-driver';
import { frameSeq } from './frames';
import { receive, sendAll, sleep } from './queue-traffic';

const isTest = (f: Uint8Array): boolean => frameSeq(f) !== -1;

/** Sends `frames` from the driver `chunk` at a time; returns the test frames the peer received (in order). */
export async function driverToPeer(
  driver: VirtioNetTestDriver,
  peer: NetBackendQueue,
  frames: readonly Uint8Array[],
  chunk: number,
  options: (first: number) => SendOptions = () => ({}),
): Promise<Uint8Array[]> {
  const got: Uint8Array[] = [];
  for (let i = 0; i < frames.length; i += chunk) {
    const part = frames.slice(i, i + chunk);
    const sent = driver.send(part, options(i));
    if (sent !== part.length) throw new Error(`driverToPeer: the device took ${sent} of ${part.length} frames`);
    // The device sends inside the kick; give the kernel time and let the device reclaim and retry.
    for (let k = 0; k < 50 && driver.tx().inFlight > 0; k++) {
      driver.poll();
      driver.reclaimTx();
      if (driver.tx().inFlight > 0) await sleep(1);
    }
    got.push(...(await receive(peer, part.length, 5000, isTest)));
  }
  return got;
}

/** Sends `frames` from the peer `chunk` at a time; returns the test frames the driver received (in order). */
export async function peerToDriver(driver: VirtioNetTestDriver, peer: NetBackendQueue, frames: readonly Uint8Array[], chunk: number): Promise<ReceivedFrame[]> {
  const got: ReceivedFrame[] = [];
  for (let i = 0; i < frames.length; i += chunk) {
    const part = frames.slice(i, i + chunk);
    const dropped = await sendAll(peer, part);
    if (dropped !== 0) throw new Error(`peerToDriver: the peer dropped ${dropped} frames`);
    const deadline = Date.now() + 5000;
    let n = 0;
    while (n < part.length && Date.now() < deadline) {
      driver.poll();
      const r = driver.receive().filter((g) => isTest(g.frame));
      n += r.length;
      got.push(...r);
      if (r.length === 0) await sleep(1);
    }
  }
  return got;
}
