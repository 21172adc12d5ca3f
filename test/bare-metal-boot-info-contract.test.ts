// The boot contract has two halves that must agree: the C header the guest
// is built with (guest-images/pmd/include/xdpvm_boot.h) and the loader in
// src/vmm/loader. This reads the header's #defines and compares them with
// the TypeScript constants, then checks what the loader writes: one boot
// info per vCPU, the command line, and a layout whose pieces do not overlap.
import * as assert from 'uvu/assert';
import { test } from 'uvu';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ensurePmdImage } from '../src/guest-build/pmd';
import { repoRoot } from '../src/repo-root';
import {
  BOOT_INFO_FLAG_TSC_KHZ, BOOT_INFO_MAGIC, BOOT_INFO_SIZE, BOOT_INFO_VERSION, BootInfoOffset, DEBUG_EXIT_PORT, FAULT_PORT, LAPIC_BASE,
  loadBareMetal, readBootInfo, Selector, UART_PORT, type AddressRange,
} from '../src/vmm/loader';

function headerDefines(): Map<string, number> {
  const text = readFileSync(path.join(repoRoot(), 'guest-images', 'pmd', 'include', 'xdpvm_boot.h'), 'utf8');
  const out = new Map<string, number>();
  for (const m of text.matchAll(/^#define\s+(XDPVM_\w+)\s+(0x[0-9a-fA-F]+|\d+)u?\b/gm)) out.set(m[1]!, Number(m[2]!));
  return out;
}

test('xdpvm_boot.h and boot-info.ts / gdt.ts agree on every number', () => {
  const h = headerDefines();
  const want: Record<string, number> = {
    XDPVM_BOOT_MAGIC: BOOT_INFO_MAGIC,
    XDPVM_BOOT_VERSION: BOOT_INFO_VERSION,
    XDPVM_BOOT_SIZE: BOOT_INFO_SIZE,
    XDPVM_BOOT_F_TSC_KHZ: BOOT_INFO_FLAG_TSC_KHZ,
    XDPVM_PORT_UART: UART_PORT,
    XDPVM_PORT_DEBUG_EXIT: DEBUG_EXIT_PORT,
    XDPVM_PORT_FAULT: FAULT_PORT,
    XDPVM_LAPIC_BASE: LAPIC_BASE,
    XDPVM_SEL_KERNEL_CS: Selector.KernelCode,
    XDPVM_SEL_KERNEL_DS: Selector.KernelData,
    XDPVM_SEL_USER_CS32: Selector.UserCode32,
    XDPVM_SEL_USER_DS: Selector.UserData,
    XDPVM_SEL_USER_CS: Selector.UserCode,
    XDPVM_SEL_TSS0: Selector.Tss0,
  };
  for (const [k, v] of Object.entries(BootInfoOffset)) want[`XDPVM_BOOT_OFF_${k}`] = v;
  for (const [name, value] of Object.entries(want)) assert.is(h.get(name), value, name);
  const offsets = [...h.keys()].filter((k) => k.startsWith('XDPVM_BOOT_OFF_'));
  assert.is(offsets.length, Object.keys(BootInfoOffset).length, 'every header offset has a TypeScript twin');
});

test('each vCPU gets its own boot info; all share the command line, RAM, MMIO and free range', () => {
  const ram = new Uint8Array(64 << 20);
  const mmio = { base: 0xc000_0000, size: 0x1000_0000 };
  const cmd = 'mode=io-fwd queues=4 seconds=2';
  const boot = loadBareMetal({ ram, image: readFileSync(ensurePmdImage()), commandLine: cmd, vcpus: 4, mmio, tscKhz: 2_096_020 });
  for (const v of boot.vcpus) {
    const b = readBootInfo(ram, v.bootInfo);
    assert.equal([b.magic, b.version, b.size, b.flags], [BOOT_INFO_MAGIC, BOOT_INFO_VERSION, BOOT_INFO_SIZE, BOOT_INFO_FLAG_TSC_KHZ]);
    assert.equal([b.vcpuIndex, b.numVcpus], [v.index, 4]);
    assert.is(b.ramSize, 64 << 20);
    assert.equal([b.mmioBase, b.mmioSize], [mmio.base, mmio.size]);
    assert.is(b.tscKhz, 2_096_020);
    assert.equal([b.freeBase, b.freeSize], [boot.layout.free.base, boot.layout.free.size]);
    assert.equal([b.stackTop, b.stackSize], [v.stackTop, 64 * 1024]);
    assert.is(b.imageEnd, boot.layout.imageEnd);
    assert.is(b.cmdlineLen, cmd.length);
    assert.is(Buffer.from(ram.subarray(b.cmdlineAddr, b.cmdlineAddr + b.cmdlineLen + 1)).toString('latin1'), `${cmd}\0`);
  }
  // Without a TSC rate the flag is clear (the guest then calibrates).
  const ram2 = new Uint8Array(8 << 20);
  const b2 = loadBareMetal({ ram: ram2, image: readFileSync(ensurePmdImage()), mmio });
  const info = readBootInfo(ram2, b2.vcpus[0]!.bootInfo);
  assert.equal([info.flags, info.tscKhz, info.cmdlineLen], [0, 0, 0]);
});

test('the layout pieces are disjoint, page-aligned, clear of page 0 and of the image', () => {
  const ram = new Uint8Array(48 << 20);
  const boot = loadBareMetal({ ram, image: readFileSync(ensurePmdImage()), vcpus: 8, mmio: { base: 0xe000_0000, size: 0x1000_0000 } });
  const L = boot.layout;
  const pieces: [string, AddressRange][] = [
    ['system', L.system],
    ['free', L.free],
    ...L.stacks.map((s, i): [string, AddressRange] => [`stack ${i}`, s]),
    ...L.stacks.map((s, i): [string, AddressRange] => [`guard ${i}`, { base: s.base - 4096, size: 4096 }]),
    ...boot.segments.map((s): [string, AddressRange] => [`segment ${s.index}`, { base: s.address, size: s.memSize }]),
  ];
  for (const [name, r] of pieces) {
    assert.ok(r.base >= 4096 && r.base + r.size <= ram.length, `${name} inside RAM, off page 0`);
    if (!name.startsWith('segment')) assert.is(r.base % 4096, 0, `${name} page-aligned`);
  }
  for (let i = 0; i < pieces.length; i++) {
    for (let j = i + 1; j < pieces.length; j++) {
      const [an, a] = pieces[i]!;
      const [bn, b] = pieces[j]!;
      assert.ok(a.base + a.size <= b.base || b.base + b.size <= a.base, `${an} and ${bn} overlap`);
    }
  }
  // Inside the system block, every table lies within it.
  for (const r of [L.gdt, L.idt, L.stubs, L.pageTables, L.boot, L.cmdline, ...L.exceptionStacks]) {
    assert.ok(r.base >= L.system.base && r.base + r.size <= L.system.base + L.system.size);
  }
});

test.run();
