// A triple fault (KVM_EXIT_SHUTDOWN) ends the run with what is left to say:
// on SVM the VMCB is reinitialised at the shutdown intercept, so the
// registers are gone; the message gives the vCPU's last register accesses
// and whether the VMM-built system block is as loaded. Here the host side
// zeroes the IDT after loading (as a stray write through guest RAM would),
// and the PMD guest takes a #PF on purpose: #PF, #NP and #DF all meet a
// not-present gate, and the CPU shuts down.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { ensurePmdImage } from '../src/guest-build/pmd';
import { bootPlanFor } from '../src/vmm/boot-plan';
import { Machine } from '../src/vmm/machine';
import { loadBareMetal } from '../src/vmm/loader';
import { PCI_MMIO32 } from '../src/vmm/memory-layout';
import { kvmTest } from './support/kvm-guest';

const RAM = 64 << 20;

async function runPmd(append: string, corrupt: (ram: Uint8Array, idt: { base: number; size: number }) => void): Promise<{ reason: string; detail: string; console: string }> {
  const image = readFileSync(ensurePmdImage());
  const plan = bootPlanFor(image, 'pmd.elf', append);
  let out = '';
  const m = new Machine({
    memoryBytes: RAM,
    cpus: 1,
    nets: [],
    load: (memory, cpus) => {
      const p = plan(memory, cpus);
      // Where the loader put the IDT: the same layout, computed again on scratch RAM (nothing the guest sees).
      const scratch = new Uint8Array(memory.regionBytes(0).length);
      const { layout } = loadBareMetal({ ram: scratch, image, commandLine: append, vcpus: cpus, mmio: PCI_MMIO32 });
      corrupt(memory.regionBytes(0), layout.idt);
      return p;
    },
    console: (b) => (out += String.fromCharCode(b)),
    warn: () => {},
  });
  try {
    const r = await m.run();
    return { reason: r.reason, detail: r.detail, console: out };
  } finally {
    await m.close();
  }
}

kvmTest('a triple fault names the vCPU, its last exits, and which part of the system block a host-side writer changed', async () => {
  const r = await runPmd('fault=pf', (ram, idt) => ram.fill(0, idt.base, idt.base + idt.size));
  console.log(`# ${r.reason}: ${r.detail}`);
  assert.is(r.reason, 'shutdown', JSON.stringify(r));
  assert.match(r.detail, /^vCPU 0: triple fault \(KVM_EXIT_SHUTDOWN\); /);
  assert.match(r.detail, /; (last \d+ of \d+ exits: |no port or MMIO exit before it)/);
  assert.match(r.detail, /system block was changed by a host-side writer .*: IDT \d+ byte\(s\) in \[0x[0-9a-f]+, 0x[0-9a-f]+\]$/);
  assert.not.match(r.detail, /page tables|TSS|GDT/, 'only the IDT was touched');
});

test.run();
