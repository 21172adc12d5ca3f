import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  EventSuppression,
  NetConfig,
  NetFeature,
  NetHdr,
  PackedDesc,
  PackedDescFlags,
  SplitUsed,
  VirtioFeature,
  featureBit,
  featureMask,
  featureWord,
  hasFeature,
  netCtrlQueueIndex,
  splitAvailEventOffset,
  splitAvailSize,
  splitUsedEventOffset,
  splitUsedSize,
  withFeatureWord,
} from 'virtio-spec-types';

test('feature bit helpers', () => {
  assert.is(featureBit(VirtioFeature.VERSION_1), 1n << 32n);
  const f = featureMask(VirtioFeature.VERSION_1, VirtioFeature.RING_PACKED, NetFeature.MAC, NetFeature.SPEED_DUPLEX);
  assert.ok(hasFeature(f, VirtioFeature.RING_PACKED));
  assert.not.ok(hasFeature(f, VirtioFeature.EVENT_IDX));
  assert.is(featureWord(f, 0), 1 << NetFeature.MAC);
  assert.is(featureWord(f, 1), (1 | (1 << 2) | 2 ** 31) >>> 0);
  assert.is(withFeatureWord(f, 0, 0), f & ~0xffffffffn);
  assert.throws(() => featureBit(128), RangeError);
  assert.throws(() => featureBit(1.5), RangeError);
});

test('split ring sizes and event index positions (§2.7)', () => {
  assert.is(splitAvailSize(256), 6 + 512);
  assert.is(splitUsedSize(256), 6 + 2048);
  assert.is(splitUsedEventOffset(256), 4 + 512);
  assert.is(splitAvailEventOffset(256), 4 + 2048);
  assert.is(SplitUsed.ELEM_SIZE, 8);
});

test('packed ring and virtio-net layouts', () => {
  assert.is(PackedDesc.SIZE, 16);
  assert.is(PackedDesc.FLAGS, 14);
  assert.is(PackedDescFlags.AVAIL, 0x80);
  assert.is(PackedDescFlags.USED, 0x8000);
  assert.is(EventSuppression.SIZE, 4);
  assert.is(NetHdr.SIZE, 12);
  assert.is(NetHdr.SIZE_WITH_HASH, 20);
  assert.is(NetConfig.SUPPORTED_HASH_TYPES + 4, NetConfig.SIZE);
  assert.is(netCtrlQueueIndex(4), 8);
});

test('the package exports every value of its modules as a plain data property (no getters on the hot path)', () => {
  const pkg = require('virtio-spec-types') as Record<string, unknown>;
  for (const m of ['status', 'features', 'ring', 'net', 'pci']) {
    const mod = require(`virtio-spec-types/dist/${m}`) as Record<string, unknown>;
    for (const name of Object.keys(mod)) {
      const d = Object.getOwnPropertyDescriptor(pkg, name);
      assert.ok(d && 'value' in d, `${m}.${name} is a data property of the package`);
      assert.is(d!.value, mod[name]);
    }
  }
});

test.run();
