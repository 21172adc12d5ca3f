// -netdev af-xdp option parsing: QEMU's spelling, and one clear error per rule.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { OptionError, parseAfXdpOptions } from '../src/backend/af-xdp/af-xdp-options';

test('parses every option as QEMU spells it', () => {
  const o = parseAfXdpOptions('af-xdp,id=n1,ifname=eth0,mode=skb,force-copy=on,queues=2,start-queue=3,inhibit=on,sock-fds=5:6');
  assert.equal(o, { id: 'n1', ifname: 'eth0', mode: 'skb', forceCopy: true, queues: 2, startQueue: 3, inhibit: true, sockFds: [5, 6] });
});

test('defaults: auto mode, copy off, one queue from 0, no inhibit', () => {
  const o = parseAfXdpOptions('af-xdp,id=n1,ifname=eth0');
  assert.equal(o, { id: 'n1', ifname: 'eth0', forceCopy: false, queues: 1, startQueue: 0, inhibit: false });
});

test('map-path and map-start-index (QEMU 10.1 spelling); the start index defaults to 0', () => {
  const o = parseAfXdpOptions('af-xdp,id=n1,ifname=eth0,queues=2,inhibit=on,map-path=/sys/fs/bpf/pod,,a/xsks_map,map-start-index=4');
  assert.equal(o, {
    id: 'n1', ifname: 'eth0', forceCopy: false, queues: 2, startQueue: 0, inhibit: true, mapPath: '/sys/fs/bpf/pod,a/xsks_map', mapStartIndex: 4,
  });
  assert.is(parseAfXdpOptions('af-xdp,id=n1,ifname=eth0,inhibit=on,map-path=/m').mapStartIndex, undefined);
});

const bad: Array<[string, RegExp]> = [
  ['af-xdp,ifname=eth0', /'id' is required/],
  ['af-xdp,id=n1', /'ifname' is required/],
  ['tap,id=n1,ifname=eth0', /not af-xdp/],
  ['af-xdp,id=n1,ifname=eth0,bogus=1', /unknown option 'bogus'/],
  ['af-xdp,id=n1,ifname=eth0,queues=2,queues=3', /'queues' given twice/],
  ['af-xdp,id=n1,ifname=eth0,mode=driver', /'mode' must be native or skb/],
  ['af-xdp,id=n1,ifname=eth0,force-copy=maybe', /'force-copy' must be on or off/],
  ['af-xdp,id=n1,ifname=eth0,queues=0', /'queues' must be at least 1/],
  ['af-xdp,id=n1,ifname=eth0,queues=-1', /'queues' must be at least 1/],
  ['af-xdp,id=n1,ifname=eth0,queues=two', /'queues' must be an integer/],
  ['af-xdp,id=n1,ifname=eth0,queues=1.5', /'queues' must be an integer/],
  ['af-xdp,id=n1,ifname=eth0,start-queue=-1', /'start-queue' must not be negative/],
  ['af-xdp,id=n1,ifname=eth0,inhibit=on', /'inhibit=on' requires 'sock-fds'/],
  ['af-xdp,id=n1,ifname=eth0,sock-fds=3', /'sock-fds' requires 'inhibit=on'/],
  ['af-xdp,id=n1,ifname=eth0,inhibit=on,sock-fds=3:4', /has 2 fds but 'queues' is 1/],
  ['af-xdp,id=n1,ifname=eth0,queues=3,inhibit=on,sock-fds=3:4', /has 2 fds but 'queues' is 3/],
  ['af-xdp,id=n1,ifname=eth0,inhibit=on,sock-fds=x', /'sock-fds' must be file descriptor numbers/],
  ['af-xdp,id=n1,ifname=eth0,queues=2,inhibit=on,sock-fds=3:3', /same fd twice/],
  ['af-xdp,id=n1,ifname=eth0,map-path=/sys/fs/bpf/m', /'map-path' requires 'inhibit=on'/],
  ['af-xdp,id=n1,ifname=eth0,inhibit=on,sock-fds=3,map-path=/sys/fs/bpf/m', /'sock-fds' and 'map-path' are mutually exclusive/],
  ['af-xdp,id=n1,ifname=eth0,inhibit=on,map-path=', /'map-path' must name a pinned XSKMAP/],
  ['af-xdp,id=n1,ifname=eth0,inhibit=on,sock-fds=3,map-start-index=1', /'map-start-index' requires 'map-path'/],
  ['af-xdp,id=n1,ifname=eth0,inhibit=on,map-path=/m,map-start-index=-1', /'map-start-index' must not be negative/],
  ['af-xdp,id=n1,ifname=eth0,inhibit=on,map-path=/m,map-start-index=x', /'map-start-index' must be an integer/],
  ['af-xdp,id=n1,ifname=eth0,queues=2,inhibit=on,map-path=/m,map-start-index=4294967295', /does not fit a 32-bit map key/],
  ['af-xdp,id=n1,ifname=this-name-is-too-long', /not a valid interface name/],
  ['af-xdp,id=1x,ifname=eth0', /'id' must start with a letter/],
  ['af-xdp,id=n1,ifname=eth0,queues', /not of the form key=value/],
];

for (const [spec, message] of bad) {
  test(`rejects ${spec}`, () => {
    try {
      parseAfXdpOptions(spec);
      assert.unreachable('accepted');
    } catch (e) {
      assert.instance(e, OptionError);
      assert.match((e as Error).message, message);
    }
  });
}

test.run();
