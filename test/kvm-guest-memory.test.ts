// Guest RAM mappings: anonymous and memfd-backed; a memfd mapping is the
// same memory when mapped again through its fd (what vhost-user relies
// on); an alias sees the same bytes; release unmaps, detaches and closes.
import * as assert from 'uvu/assert';
import { test } from 'uvu';
import { GuestRam } from '../src/kvm';
import { openFds } from './support/kvm-guest';
import { sys } from '../src/native/sys';

test('anonymous guest memory is zeroed, shared with aliases, and detached on release', () => {
  const ram = GuestRam.allocate(4 << 20);
  assert.is(ram.fd, -1);
  assert.is(ram.size, 4 << 20);
  assert.is(ram.bytes[12345], 0);
  const alias = GuestRam.alias(ram.handle());
  ram.bytes[4 << 19] = 0xab;
  assert.is(alias.bytes[4 << 19], 0xab);
  alias.release(); // no-op: aliases do not own the mapping
  assert.is(ram.bytes[4 << 19], 0xab);
  ram.release();
  assert.is(ram.buffer.byteLength, 0);
  assert.is(ram.bytes.length, 0);
});

test('memfd guest memory can be mapped again through its fd, and release closes the fd', () => {
  const before = openFds();
  const ram = GuestRam.allocate(1 << 20, { memfd: 'xdpvm-test-ram' });
  assert.ok(ram.fd >= 0);
  assert.ok(sys.fdIsOpen(ram.fd));
  const again = sys.mapFd(ram.fd, 0, 1 << 20);
  new Uint8Array(again)[777] = 0x5c;
  assert.is(ram.bytes[777], 0x5c, 'second mapping of the memfd is the same memory');
  sys.unmap(again);
  const fd = ram.fd;
  ram.release();
  ram.release(); // idempotent
  assert.not.ok(sys.fdIsOpen(fd));
  assert.is(openFds(), before);
});

test('hugepage-backed memory must be whole 2 MiB pages', () => {
  assert.throws(() => GuestRam.allocate(1 << 20, { hugepages: true }), /multiple of the page size/);
});

test.run();
