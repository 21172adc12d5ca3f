// `xdpvm run -kernel FILE`: what kind of kernel a file is, and which loader it gets.
import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { bootPlanFor } from '../src/vmm/boot-plan';
import { ensurePmdImage } from '../src/guest-build/pmd';
import { detectKernelKind } from '../src/vmm/loader/kernel-kind';

import { KERNEL_PATH as debianKernel } from './support/linux-loader-rig';

test('a Debian bzImage, the PMD ELF and junk are told apart', () => {
  assert.is(detectKernelKind(readFileSync(debianKernel)), 'bzimage');
  assert.is(detectKernelKind(readFileSync(ensurePmdImage())), 'bare-metal-elf');
  assert.is(detectKernelKind(new Uint8Array(4096)), undefined);
  assert.is(detectKernelKind(new Uint8Array(10)), undefined);
});

test('junk is refused with the file named; a bare-metal ELF takes no initrd', () => {
  assert.throws(() => bootPlanFor(new Uint8Array(4096), 'junk.bin', ''), /'junk.bin' is neither a Linux bzImage\/vmlinux nor a 64-bit ELF/);
  const pmd = readFileSync(ensurePmdImage());
  assert.throws(() => bootPlanFor(pmd, 'pmd.elf', '', { bytes: new Uint8Array(1), path: 'i' }), /takes no initrd/);
  assert.type(bootPlanFor(pmd, 'pmd.elf', 'mode=txonly'), 'function');
  assert.type(bootPlanFor(readFileSync(debianKernel), debianKernel, 'console=ttyS0', { bytes: new Uint8Array(512), path: 'i' }), 'function');
  assert.throws(() => bootPlanFor(readFileSync(debianKernel), debianKernel, '', undefined, 0), /-iopl: only for a bare-metal ELF/);
  assert.type(bootPlanFor(pmd, 'pmd.elf', 'mode=txonly', undefined, 0), 'function');
});

test.run();
