// The benchmark driver's forwarding hand-over (SplitBufferRing.swapBuffers):
// a received buffer goes out on the transmit ring and a free transmit buffer
// takes its place on the receive ring, and the device sees each descriptor at
// its new address.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DescriptorChain } from '../src/virtio/queue/descriptor-chain';
import { createVirtqueue } from '../src/virtio/queue/virtqueue';
import { DriverQueue } from '../src/test-driver/driver-queue';
import { GuestRam } from '../src/test-driver/guest-ram';
import { SplitBufferRing } from '../src/test-driver/split-buffer-ring';

const SIZE = 8;
const BUF = 2048;

test('swapBuffers exchanges the buffers behind two descriptors of two rings; the device pops the new addresses', () => {
  const ram = new GuestRam(1 << 20);
  const queue = (index: number): DriverQueue => new DriverQueue({ index, size: SIZE, kind: 'split', eventIdx: false, ram, notify: () => {} });
  const rxq = queue(0);
  const txq = queue(1);
  const rx = new SplitBufferRing(rxq, ram, BUF, true);
  const tx = new SplitBufferRing(txq, ram, BUF, false);
  const rx3 = rx.bufferOffset(3);
  const tx5 = tx.bufferOffset(5);
  const rx2 = rx.bufferOffset(2);
  const tx4 = tx.bufferOffset(4);
  assert.is.not(rx3, tx5);
  rx.swapBuffers(3, tx, 5);
  assert.is(tx.bufferOffset(5), rx3, 'transmit descriptor 5 now holds the received frame');
  assert.is(rx.bufferOffset(3), tx5, 'receive descriptor 3 now holds the free transmit buffer');
  assert.is(rx.bufferOffset(2), rx2, 'the other descriptors stay put');
  assert.is(tx.bufferOffset(4), tx4);

  const features = { eventIdx: false, indirect: false, inOrder: false };
  const device = (q: DriverQueue) =>
    createVirtqueue(ram.memory, 'split', { size: SIZE, descAddr: q.descAddr, driverAddr: q.driverAddr, deviceAddr: q.deviceAddr }, { features });
  const txDev = device(txq);
  tx.offer(5, 64);
  tx.kick();
  const chain = new DescriptorChain(SIZE);
  assert.ok(txDev.pop(chain));
  assert.is(chain.headId, 5);
  assert.is(chain.addr[0], ram.base + rx3);
  assert.is(chain.readableLength, 64);
  assert.is(chain.writableLength, 0);

  const rxDev = device(rxq);
  rx.offer(3, BUF);
  rx.kick();
  assert.ok(rxDev.pop(chain));
  assert.is(chain.headId, 3);
  assert.is(chain.addr[0], ram.base + tx5);
  assert.is(chain.writableLength, BUF, 'still device-writable: only the address moved');
});

test.run();
