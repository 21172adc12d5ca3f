import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { xsk } from '../src/native/xsk';
import { sys } from '../src/native/sys';

test('an AF_XDP socket reports the AF_XDP domain', () => {
  const fd = xsk.socket();
  try {
    assert.is(xsk.socketDomain(fd), xsk.constants.AF_XDP);
  } finally {
    sys.close(fd);
  }
});

test('socketDomain of a non-socket fd is a negative errno', () => {
  assert.ok(xsk.socketDomain(0) < 0 || xsk.socketDomain(0) !== xsk.constants.AF_XDP);
});

test('an unmapped mapping is detached, not dangling', () => {
  const ab = sys.mapAnonymous(1 << 16, 'base');
  const view = new Uint8Array(ab);
  view[100] = 7;
  assert.is(view[100], 7);
  sys.unmap(ab);
  assert.is(ab.byteLength, 0);
  assert.is(view.length, 0);
});

test.run();
