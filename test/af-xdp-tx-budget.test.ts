// Copy-mode Tx sends only inside sendto, 32 descriptors per call unless the
// socket raised XDP_MAX_TX_SKB_BUDGET (Linux >= 6.17). Where the kernel takes
// it, one kick sends a whole device batch; elsewhere the Tx path keeps
// kicking on EAGAIN. Either way every frame arrives.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { KERNEL_TX_PER_SENDTO } from '../src/backend/af-xdp/xsk-socket';
import { RingId, xsk } from '../src/native/xsk';
import { sys } from '../src/native/sys';
import { frameSeq, makeFrame } from './support/frames';
import { drainTx, receive } from './support/queue-traffic';
import { openBackend, TEST_TUNING, withVeth } from './support/veth-backends';

const BATCH = 256;

/** Asks a scratch socket whether this kernel has XDP_MAX_TX_SKB_BUDGET. */
function kernelHasTxBudget(): boolean {
  const fd = xsk.socket();
  try {
    xsk.setRingSize(fd, RingId.Tx, 64);
    return xsk.setTxBudget(fd, 64) === 0;
  } finally {
    sys.close(fd);
  }
}

test('setTxBudget refuses a value below 32 or above the Tx ring, and a socket without a Tx ring', () => {
  if (!kernelHasTxBudget()) {
    console.log('  (this kernel has no XDP_MAX_TX_SKB_BUDGET: checked that it says ENOPROTOOPT)');
    const fd = xsk.socket();
    try {
      assert.is(xsk.setTxBudget(fd, 64), -92);
    } finally {
      sys.close(fd);
    }
    return;
  }
  const fd = xsk.socket();
  try {
    assert.is(xsk.setTxBudget(fd, 64), -13, 'no Tx ring yet: EACCES');
    xsk.setRingSize(fd, RingId.Tx, 128);
    assert.is(xsk.setTxBudget(fd, 16), -13);
    assert.is(xsk.setTxBudget(fd, 256), -13);
    assert.is(xsk.setTxBudget(fd, 128), 0);
  } finally {
    sys.close(fd);
  }
});

test('one flush of a 256-frame batch takes one sendto where the kernel allows the budget, 8 where it does not', async () => {
  const raised = kernelHasTxBudget();
  await withVeth('txbudget', {}, async (pair) => {
    const a = openBackend(pair.a.netns, `af-xdp,id=a,ifname=${pair.a.ifname}`);
    const b = openBackend(pair.b.netns, `af-xdp,id=b,ifname=${pair.b.ifname}`);
    try {
      const socket = a.sockets[0]!;
      assert.is(socket.txPerSendto, raised ? TEST_TUNING.ringSize : KERNEL_TX_PER_SENDTO);
      const qa = a.queues[0]!;
      const kicksBefore = qa.counters.txKicks;
      for (let i = 0; i < BATCH; i++) {
        const off = qa.txAcquire(64);
        assert.ok(off >= 0, `frame ${i}: acquire said ${off}`);
        qa.txBuffer.set(makeFrame(i, 64), off);
        qa.txCommit(off, 64);
      }
      qa.txFlush();
      assert.is(qa.counters.txKicks - kicksBefore, raised ? 1 : BATCH / KERNEL_TX_PER_SENDTO);
      assert.is(qa.txUnsent(), 0, 'the kicks left nothing on the Tx ring');
      const got = await receive(b.queues[0]!, BATCH, 5000, (f) => frameSeq(f) >= 0);
      assert.is(got.length, BATCH);
      got.forEach((f, i) => assert.is(frameSeq(f), i, `frame ${i}`));
      await drainTx(qa);
      assert.is(qa.frameAccounting().total, qa.frameCount, 'no leaked frame');
    } finally {
      a.close();
      b.close();
    }
  });
});

test.run();
