// A VMM that delivers MSI-X through irqfds must re-aim them whenever a
// queue's vector mapping changes (§4.1.5.1.2), not only when the MSI-X
// table or its enable bit changes: a driver may enable MSI-X first and map
// its queues afterwards (the PMD guest does), or remap a queue later.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VIRTIO_MSI_NO_VECTOR, VirtioPciCommonCfg as C } from 'virtio-spec-types';
import { setupVirtioPci } from './support/virtio-pci-guest';

test('writes to queue_msix_vector and config_msix_vector, and a reset, each tell the listeners', () => {
  const t = setupVirtioPci({}, { msixVectors: 4 });
  const seen: Array<[number, number]> = [];
  t.vpci.onVectorMappingChanged(() => seen.push([t.vpci.queueVector(1), t.vpci.configVector]));
  t.common.write(C.QUEUE_SELECT, 2, 1);
  t.common.write(C.QUEUE_MSIX_VECTOR, 2, 2);
  t.common.write(C.CONFIG_MSIX_VECTOR, 2, 3);
  // A vector beyond the table maps to NO_VECTOR, and that is a change too.
  t.common.write(C.QUEUE_MSIX_VECTOR, 2, 9);
  t.common.write(C.DEVICE_STATUS, 1, 0);
  assert.equal(seen, [
    [2, VIRTIO_MSI_NO_VECTOR],
    [2, 3],
    [VIRTIO_MSI_NO_VECTOR, 3],
    [VIRTIO_MSI_NO_VECTOR, VIRTIO_MSI_NO_VECTOR],
  ]);
});

test('reads and unrelated writes do not', () => {
  const t = setupVirtioPci({}, { msixVectors: 4 });
  let calls = 0;
  t.vpci.onVectorMappingChanged(() => calls++);
  t.common.read(C.QUEUE_MSIX_VECTOR, 2);
  t.common.write(C.QUEUE_SELECT, 2, 0);
  t.common.write(C.QUEUE_SIZE, 2, 64);
  assert.is(calls, 0);
});

test.run();
