// Shared by the `xdpvm run` end-to-end tests: the PMD guest under the VMM on
// one end of a veth pair, the project's XDP counter and XSK generator on the
// other end.
import { spawn } from 'node:child_process';
import path from 'node:path';
import type { PmdVmExit } from '../../src/bench/pmd-vm';
import { XdpCounter } from '../../src/bench/xdp-counter';
import type { EndpointParams } from '../../src/bench/xsk-endpoint';
import { inNetns, type VethPair } from '../../src/host/netns';
import { xsk } from '../../src/native/xsk';

export const TIMEOUT_MS = 240_000;

export function describe(e: PmdVmExit): string {
  return `exit ${e.code ?? e.signal}${e.timedOut ? ' (timed out)' : ''}\n--- console\n${e.console.slice(-3000)}\n--- stderr\n${e.stderr.slice(-3000)}`;
}

export function counterOn(pair: VethPair): XdpCounter {
  return inNetns(pair.b.netns, () => XdpCounter.attach(xsk.ifNameToIndex(pair.b.ifname), 'skb'));
}

/**
 * Frames from the peer towards the guest for `seconds`: the project's raw C
 * XSK sender, which attaches no XDP program (several can run, one per queue,
 * next to the peer's XDP counter).
 */
export function generator(pair: VethPair, seconds: number, queue = 0): { done: Promise<string>; stop: () => void } {
  const p: EndpointParams = {
    netns: pair.b.netns, ifname: pair.b.ifname, impl: 'c', direction: 'tx', xdpMode: 'skb',
    seconds, size: 64, batch: 16, queue,
  };
  // Niced: a sender that never yields would starve the VMM's threads on a 2-CPU TCG guest.
  const child = spawn('nice', ['-n', '19', process.execPath, path.join(__dirname, '..', '..', 'src', 'bench', 'xsk-endpoint.js'), JSON.stringify(p)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr.on('data', (b: Buffer) => (out += b.toString()));
  const done = new Promise<string>((resolve) => child.once('close', () => resolve(out)));
  return { done, stop: () => void child.kill('SIGTERM') };
}

export async function waitUntil(what: string, cond: () => boolean, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`${what} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}


/**
 * Waits until `count()` has not moved for `quietMs` (frames already inside
 * the kernel when a sender stops are still delivered; under emulation that
 * can take a while), then returns the settled value.
 */
export async function settled(count: () => number, quietMs: number, maxMs: number): Promise<number> {
  const until = Date.now() + maxMs;
  let last = count();
  let since = Date.now();
  while (Date.now() - since < quietMs) {
    if (Date.now() > until) throw new Error(`the count still moved after ${maxMs} ms (now ${last})`);
    await new Promise((r) => setTimeout(r, 50));
    const now = count();
    if (now !== last) {
      last = now;
      since = Date.now();
    }
  }
  return last;
}
