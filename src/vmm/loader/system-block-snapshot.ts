// What the bare-metal loader wrote into the system block (GDT, IDT,
// exception stubs, TSSs, page tables, boot infos, command line), kept to
// compare against after a triple fault. Ring 3 cannot write these pages
// (supervisor-only, or user read-only), so a difference means a host-side
// writer (the VMM, or the kernel writing a received frame through guest
// RAM registered as the UMEM) and not a guest bug; an intact block points
// at the guest's own state or at the CPU. The CPU itself only sets bits the
// comparison ignores: Accessed/Dirty in page-table entries (SDM vol. 3A
// §4.8), Accessed and TSS busy in descriptor types (§3.4.5.1, §8.2.2), and
// it pushes exception frames on the ring-0 stacks, which are not compared.
import type { BareMetalLayout } from './bare-metal-loader';
import { TSS64_WITH_IO_BITMAP_SIZE } from './gdt';
import { hex } from '../../hex';

interface Part {
  name: string;
  base: number;
  bytes: Uint8Array;
  /** Per 8-byte entry: bits of byte `maskByte` the CPU may change. */
  ignore?: { maskByte: number; bits: number };
}

/** Page-table entries: Accessed (bit 5) and Dirty (bit 6). */
const PTE_AD = { maskByte: 0, bits: 0x60 };
/** Descriptors: type bit 0 (Accessed) and bit 1 (busy, for a TSS), in byte 5. */
const DESC_TYPE_AB = { maskByte: 5, bits: 0x03 };

export class SystemBlockSnapshot {
  private constructor(private readonly parts: readonly Part[]) {}

  /** Copies the parts of `layout` out of `ram` (right after loadBareMetal wrote them). */
  static take(ram: Uint8Array, layout: BareMetalLayout): SystemBlockSnapshot {
    const part = (name: string, base: number, size: number, ignore?: Part['ignore']): Part => ({
      name,
      base,
      bytes: ram.slice(base, base + size),
      ...(ignore ? { ignore } : {}),
    });
    return new SystemBlockSnapshot([
      part('GDT', layout.gdt.base, layout.gdt.size, DESC_TYPE_AB),
      part('IDT', layout.idt.base, layout.idt.size),
      part('exception stubs', layout.stubs.base, layout.stubs.size),
      ...layout.tss.map((t, i) => part(`TSS ${i}`, t, TSS64_WITH_IO_BITMAP_SIZE)),
      part('page tables', layout.pageTables.base, layout.pageTables.size, PTE_AD),
      part('boot infos and command line', layout.boot.base, layout.boot.size),
    ]);
  }

  /** Where `ram` differs from the snapshot, part by part (empty: intact). */
  changes(ram: Uint8Array): Array<{ part: string; first: number; last: number; bytes: number }> {
    const out: Array<{ part: string; first: number; last: number; bytes: number }> = [];
    for (const p of this.parts) {
      let first = -1;
      let last = -1;
      let bytes = 0;
      for (let i = 0; i < p.bytes.length; i++) {
        const at = p.base + i;
        const mask = p.ignore && i % 8 === p.ignore.maskByte ? ~p.ignore.bits & 0xff : 0xff;
        if (((ram[at] ?? 0) & mask) === (p.bytes[i]! & mask)) continue;
        if (first < 0) first = at;
        last = at;
        bytes++;
      }
      if (bytes > 0) out.push({ part: p.name, first, last, bytes });
    }
    return out;
  }

  /** One line for a stop message. */
  describe(ram: Uint8Array): string {
    const c = this.changes(ram);
    if (c.length === 0) return 'the VMM-built system block (GDT, IDT, stubs, TSSs, page tables, boot infos) is as loaded';
    return (
      'the VMM-built system block was changed by a host-side writer (ring 3 cannot write it): ' +
      c.map((x) => `${x.part} ${x.bytes} byte(s) in [${hex(x.first)}, ${hex(x.last)}]`).join('; ')
    );
  }
}
