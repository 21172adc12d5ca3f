// Run by the xsk-helper test as the unprivileged child: opens the backend
// from `-netdev af-xdp,...,inhibit=on,sock-fds=...`, prints its capability
// sets, sends N test frames, receives N, and prints the result as JSON.
//   node inhibit-endpoint.js NETDEV_SPEC N
import { AfXdpBackend } from '../../src/backend/af-xdp/af-xdp-backend';
import { parseAfXdpOptions } from '../../src/backend/af-xdp/af-xdp-options';
import { capabilitySets } from '../../src/host/capabilities';
import { frameSeq, frameTag, makeFrame } from './frames';
import { receive, sendAll } from './queue-traffic';
// Small enough for the default 8 MiB RLIMIT_MEMLOCK of an unprivileged user.
const CHILD_TUNING = { frameSize: 4096, frameCount: 1024, ringSize: 256 };

async function main(): Promise<void> {
  const [spec, nText] = process.argv.slice(2);
  const n = Number(nText);
  const caps = capabilitySets();
  const backend = AfXdpBackend.open(parseAfXdpOptions(spec!), CHILD_TUNING);
  try {
    const q = backend.queues[0]!;
    process.stdout.write(`ready\n`);
    const dropped = await sendAll(q, Array.from({ length: n }, (_, i) => makeFrame(i, 100, 7)));
    const got = await receive(q, n, 10000, (f) => frameSeq(f) >= 0 && frameTag(f) === 8);
    process.stdout.write(
      `${JSON.stringify({
        uid: process.getuid?.(),
        caps: Object.fromEntries(Object.entries(caps).map(([k, v]) => [k, v.toString(16)])),
        mode: backend.mode,
        sent: q.counters.txPackets,
        dropped,
        received: got.length,
        inOrder: got.every((f, i) => frameSeq(f) === i),
      })}\n`,
    );
  } finally {
    backend.close();
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`inhibit-endpoint: ${(e as Error).message}\n`);
  process.exit(1);
});
