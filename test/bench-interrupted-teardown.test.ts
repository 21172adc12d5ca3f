// A bench stopped mid-run still removes the namespaces it made (and with them the veth pair and its XDP
// programs): on Ctrl-C (SIGINT), on SIGTERM, and when the reader of its output goes away (EPIPE, as with
// `xdpvm bench ... | head`). Named namespaces outlive the process, so a skipped `finally` leaked them.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { listNetns } from '../src/host/netns';
import { sleep } from './support/queue-traffic';

/** The namespaces VethPair made in process `pid` (named xdpvm-TAG-SIDE-PID-N). */
const namespacesOf = (pid: number): string[] => listNetns().filter((n) => n.includes(`-${pid}-`));

const XDPVM = path.join(__dirname, '..', '..', 'bin', 'xdpvm');
const BENCH = ['bench', 'device', '--backend', 'af-xdp', '--threads', '--mode', 'txonly', '--seconds', '3', '--runs', '3'];

/** Starts the bench and resolves once its namespaces exist (the first progress line follows their creation). */
async function started(): Promise<{ child: ChildProcess; exited: Promise<number | null>; stderr: () => string }> {
  const child = spawn(process.execPath, [XDPVM, ...BENCH], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => void (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  for (let i = 0; i < 300 && namespacesOf(child.pid!).length < 2; i++) await sleep(20);
  assert.is(namespacesOf(child.pid!).length, 2, `the bench made its two namespaces: ${err}`);
  return { child, exited, stderr: () => err };
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  test(`bench device stopped by ${signal} mid-run removes its namespaces`, async () => {
    const { child, exited, stderr } = await started();
    await sleep(500);
    child.kill(signal);
    const code = await exited;
    assert.is(code, signal === 'SIGINT' ? 130 : 143, stderr());
    assert.match(stderr(), new RegExp(`bench: ${signal}, removing its namespaces`));
    assert.equal(namespacesOf(child.pid!), [], 'no namespace of the bench is left');
  });
}

test('bench device whose output reader goes away (EPIPE) removes its namespaces', async () => {
  const { child, exited } = await started();
  // The reader closes its end; the bench's next progress line meets EPIPE.
  child.stderr!.destroy();
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const code = await exited;
  clearTimeout(timer);
  assert.is.not(code, null, 'the bench exited by itself, not by the test’s SIGKILL');
  assert.equal(namespacesOf(child.pid!), [], 'no namespace of the bench is left');
});

test.run();
