// The bare-metal loader refuses bad ELF images with an error naming what is
// wrong, before writing anything to guest RAM: wrong class, byte order,
// type or machine, truncated headers and segments, dynamic linking,
// segments outside RAM, on page 0, overlapping each other or the vCPU
// stacks, an entry point outside executable code.
import * as assert from 'uvu/assert';
import { test } from 'uvu';
import { readFileSync } from 'node:fs';
import { ensurePmdImage } from '../src/guest-build/pmd';
import { ElfError, LoaderError, loadBareMetal, parseElf64, PF_R, PF_W, PF_X, PT_LOAD } from '../src/vmm/loader';

const MMIO = { base: 0xc000_0000, size: 0x1000_0000 };
const RAM = 16 << 20;
const ZERO = Buffer.alloc(RAM);

interface Seg {
  type?: number;
  flags?: number;
  offset?: number;
  vaddr: number;
  paddr?: number;
  filesz: number;
  memsz?: number;
}

/** A minimal ELF64 file: header, program headers, then each segment's bytes (0xcc) at its offset. */
function makeElf(segs: Seg[], o: { entry?: number; cls?: number; data?: number; type?: number; machine?: number; phentsize?: number; phnum?: number } = {}): Uint8Array {
  const phoff = 64;
  let fileEnd = phoff + segs.length * 56;
  const placed = segs.map((s) => {
    const offset = s.offset ?? Math.ceil(fileEnd / 16) * 16;
    fileEnd = Math.max(fileEnd, offset + s.filesz);
    return { ...s, offset };
  });
  const f = new Uint8Array(fileEnd);
  const dv = new DataView(f.buffer);
  f.set([0x7f, 0x45, 0x4c, 0x46, o.cls ?? 2, o.data ?? 1, 1]);
  dv.setUint16(16, o.type ?? 2, true);
  dv.setUint16(18, o.machine ?? 62, true);
  dv.setUint32(20, 1, true);
  dv.setBigUint64(24, BigInt(o.entry ?? segs[0]?.vaddr ?? 0), true);
  dv.setBigUint64(32, BigInt(phoff), true);
  dv.setUint16(52, 64, true);
  dv.setUint16(54, o.phentsize ?? 56, true);
  dv.setUint16(56, o.phnum ?? segs.length, true);
  placed.forEach((s, i) => {
    const p = phoff + i * 56;
    dv.setUint32(p, s.type ?? PT_LOAD, true);
    dv.setUint32(p + 4, s.flags ?? PF_R | PF_X, true);
    dv.setBigUint64(p + 8, BigInt(s.offset), true);
    dv.setBigUint64(p + 16, BigInt(s.vaddr), true);
    dv.setBigUint64(p + 24, BigInt(s.paddr ?? s.vaddr), true);
    dv.setBigUint64(p + 32, BigInt(s.filesz), true);
    dv.setBigUint64(p + 40, BigInt(s.memsz ?? s.filesz), true);
    if (s.type === undefined || s.type === PT_LOAD) f.fill(0xcc, s.offset, s.offset + s.filesz);
  });
  return f;
}

const GOOD: Seg[] = [
  { vaddr: 0x400000, filesz: 0x100 },
  { vaddr: 0x401000, filesz: 0x10, memsz: 0x2000, flags: PF_R | PF_W },
];

function throwsElf(image: Uint8Array, pattern: RegExp, ram = RAM): void {
  const mem = new Uint8Array(ram);
  assert.throws(
    () => loadBareMetal({ ram: mem, image, mmio: MMIO }),
    (e: unknown) => e instanceof ElfError && pattern.test((e as Error).message),
    `expected ElfError matching ${pattern}`,
  );
  assert.ok(ZERO.equals(mem), 'nothing written to RAM before the image was refused');
}

test('a good synthetic image loads: file bytes copied, the rest of memsz zeroed', () => {
  const ram = new Uint8Array(RAM).fill(0x55);
  const boot = loadBareMetal({ ram, image: makeElf(GOOD), mmio: MMIO });
  assert.is(boot.entry, 0x400000);
  assert.is(ram[0x400000], 0xcc);
  assert.is(ram[0x4000ff], 0xcc);
  assert.is(ram[0x401000 + 0x0f], 0xcc);
  assert.is(ram[0x401000 + 0x10], 0, '.bss zeroed');
  assert.is(ram[0x402fff], 0);
  assert.is(boot.layout.imageEnd, 0x403000);
});

test('the real PMD image parses: static ET_EXEC at 0x400000 with an executable entry', () => {
  const img = parseElf64(readFileSync(ensurePmdImage()));
  assert.is(img.entry, 0x400000);
  assert.ok(img.segments.length >= 2);
  assert.ok((img.segments[0]!.flags & PF_X) !== 0);
});

test('header errors: truncated, magic, class, byte order, type, machine, phentsize, phnum', () => {
  const good = makeElf(GOOD);
  throwsElf(good.subarray(0, 40), /shorter than an ELF64 header/);
  const bad = (patch: (f: Uint8Array) => void): Uint8Array => {
    const f = good.slice();
    patch(f);
    return f;
  };
  throwsElf(bad((f) => (f[1] = 0x46)), /bad magic/);
  throwsElf(makeElf(GOOD, { cls: 1 }), /ELFCLASS64/);
  throwsElf(makeElf(GOOD, { data: 2 }), /little-endian/);
  throwsElf(makeElf(GOOD, { type: 3 }), /ET_DYN: position-independent/);
  throwsElf(makeElf(GOOD, { type: 1 }), /e_type 1 is not ET_EXEC/);
  throwsElf(makeElf(GOOD, { machine: 183 }), /e_machine 183 is not EM_X86_64/);
  throwsElf(makeElf(GOOD, { machine: 3 }), /e_machine 3/);
  throwsElf(makeElf(GOOD, { phentsize: 32 }), /e_phentsize 32/);
  throwsElf(makeElf(GOOD, { phnum: 0 }), /no program headers/);
  throwsElf(makeElf(GOOD, { phnum: 40 }), /program header table .* is not within the .*-byte file/);
});

test('segment errors: bytes past the end of the file, filesz > memsz, vaddr != paddr, dynamic linking', () => {
  throwsElf(makeElf([{ vaddr: 0x400000, filesz: 0x100, offset: 0x1000 }]).subarray(0, 0x1080), /run past the end of the/);
  throwsElf(makeElf([{ vaddr: 0x400000, filesz: 0x100, memsz: 0x80 }]), /p_filesz 0x100 exceeds p_memsz 0x80/);
  throwsElf(makeElf([{ vaddr: 0x400000, paddr: 0x1000000, filesz: 0x100 }]), /differs from p_paddr .* identity-mapped/);
  throwsElf(makeElf([...GOOD, { type: 3, vaddr: 0, filesz: 0x10 }]), /PT_INTERP: the image must be statically linked/);
  throwsElf(makeElf([...GOOD, { type: 2, vaddr: 0, filesz: 0x10 }]), /PT_DYNAMIC/);
  throwsElf(makeElf([{ type: 4, vaddr: 0x400000, filesz: 0x10 }]), /no PT_LOAD segment/);
});

test('placement errors: outside RAM, on page 0, overlapping each other or the stacks', () => {
  throwsElf(makeElf([{ vaddr: RAM - 0x1000, filesz: 0x2000 }]), /lies outside guest RAM \[0, 0x1000000\)/);
  throwsElf(makeElf([{ vaddr: 0x4000_0000, filesz: 0x10 }]), /outside guest RAM/);
  throwsElf(makeElf([{ vaddr: 0x800, filesz: 0x10 }]), /touches page 0/);
  throwsElf(
    makeElf([
      { vaddr: 0x400000, filesz: 0x2000 },
      { vaddr: 0x401000, filesz: 0x10, flags: PF_R | PF_W },
    ]),
    /PT_LOAD segments 0 \[0x400000, 0x402000\) and 1 \[0x401000, 0x401010\) overlap/,
  );
  throwsElf(makeElf([{ vaddr: RAM - 0x8000, filesz: 0x10 }]), /overlaps the vCPU stacks/);
});

test('entry errors: outside every segment, or in a segment that is not executable', () => {
  throwsElf(makeElf(GOOD, { entry: 0x500000 }), /entry point 0x500000 is not inside any PT_LOAD segment/);
  throwsElf(makeElf(GOOD, { entry: 0x401004 }), /is in PT_LOAD segment 1, which is not executable/);
});

test('option errors: MMIO window over RAM, vCPU count, command line, RAM size', () => {
  const image = makeElf(GOOD);
  const load = (o: object): unknown => loadBareMetal({ ram: new Uint8Array(RAM), image, mmio: MMIO, ...o });
  const loaderError = (re: RegExp) => (e: unknown) => e instanceof LoaderError && re.test((e as Error).message);
  assert.throws(() => load({ mmio: { base: 0x80_0000, size: 0x10_0000 } }), loaderError(/overlaps RAM/));
  assert.throws(() => load({ mmio: { base: 0xc000_0800, size: 0x1000 } }), loaderError(/not a 4 KiB-aligned range/));
  assert.throws(() => load({ vcpus: 0 }), loaderError(/vcpus: 0 is not 1..64/));
  assert.throws(() => load({ vcpus: 65 }), loaderError(/vcpus/));
  assert.throws(() => load({ commandLine: 'mode=txonly\u0000x' }), loaderError(/printable ASCII/));
  assert.throws(() => load({ commandLine: 'x'.repeat(4096) }), loaderError(/at most 4095/));
  assert.throws(() => load({ stackSize: 1000 }), loaderError(/stackSize/));
  assert.throws(() => loadBareMetal({ ram: new Uint8Array(RAM + 100), image, mmio: MMIO }), loaderError(/multiple of 4 KiB/));
});

test.run();
