/*
 * The xdpvm bare-metal boot contract (version 1), shared by every
 * freestanding test guest and mirrored, offset for offset, by the VMM's
 * loader in src/vmm/loader/boot-info.ts (a test compares the two).
 * README.md next to this directory describes the whole contract; this header
 * is its machine-readable part.
 *
 * Entry state, per vCPU (all vCPUs enter at the ELF entry point):
 *   - 64-bit long mode, CPL 3, RFLAGS = IOPL 3 | bit 1 (IF = 0): `in`/`out`
 *     work in ring 3 (Intel SDM vol. 1 §19.5.1: I/O is allowed when CPL <= IOPL);
 *   - CS = XDPVM_SEL_USER_CS (64-bit, DPL 3), SS = DS = ES = FS = GS =
 *     XDPVM_SEL_USER_DS, all bases 0;
 *   - CR0 = PE|MP|ET|NE|WP|PG, CR4 = PAE|OSFXSR|OSXMMEXCPT (SSE usable),
 *     EFER = LME|LMA; identity-mapped page tables, user accessible, over all
 *     RAM but page 0 and the VMM's own pages, plus the PCI MMIO window
 *     mapped uncached (PCD|PWT);
 *   - RSP = top of this vCPU's stack (16-byte aligned, guard page below);
 *   - RDI = address of this vCPU's struct xdpvm_boot_info; other GPRs 0.
 */
#ifndef XDPVM_BOOT_H
#define XDPVM_BOOT_H

#define XDPVM_BOOT_MAGIC 0x56504458u /* "XDPV" in memory */
#define XDPVM_BOOT_VERSION 1

/* Port I/O the VMM gives every bare-metal guest. */
#define XDPVM_PORT_UART 0x3f8       /* 8250 THR: every byte written is console output */
#define XDPVM_PORT_DEBUG_EXIT 0x501 /* 8-bit write: the run ends, the byte is the exit status */
#define XDPVM_PORT_FAULT 0x502      /* 32-bit write by the VMM's exception stubs (CPL 0): vector */
#define XDPVM_LAPIC_BASE 0xfee00000u /* the local APIC page: mapped user read/write, uncached */

/* GDT selectors (RPL included); the loader's gdt.ts builds the table. */
#define XDPVM_SEL_KERNEL_CS 0x08
#define XDPVM_SEL_KERNEL_DS 0x10
#define XDPVM_SEL_USER_CS32 0x1b
#define XDPVM_SEL_USER_DS 0x23
#define XDPVM_SEL_USER_CS 0x2b
#define XDPVM_SEL_TSS0 0x30 /* vCPU i: 0x30 + 16 * i */

/* boot_info.flags */
#define XDPVM_BOOT_F_TSC_KHZ 1u /* tsc_khz is the VMM's measured TSC frequency */

/* Byte offsets, for the loader and for assembly. */
#define XDPVM_BOOT_OFF_MAGIC 0
#define XDPVM_BOOT_OFF_VERSION 4
#define XDPVM_BOOT_OFF_SIZE 6
#define XDPVM_BOOT_OFF_CMDLINE_ADDR 8
#define XDPVM_BOOT_OFF_CMDLINE_LEN 16
#define XDPVM_BOOT_OFF_FLAGS 20
#define XDPVM_BOOT_OFF_RAM_SIZE 24
#define XDPVM_BOOT_OFF_FREE_BASE 32
#define XDPVM_BOOT_OFF_FREE_SIZE 40
#define XDPVM_BOOT_OFF_MMIO_BASE 48
#define XDPVM_BOOT_OFF_MMIO_SIZE 56
#define XDPVM_BOOT_OFF_TSC_KHZ 64
#define XDPVM_BOOT_OFF_NUM_VCPUS 68
#define XDPVM_BOOT_OFF_VCPU_INDEX 72
#define XDPVM_BOOT_OFF_STACK_TOP 80
#define XDPVM_BOOT_OFF_STACK_SIZE 88
#define XDPVM_BOOT_OFF_UART_PORT 96
#define XDPVM_BOOT_OFF_EXIT_PORT 98
#define XDPVM_BOOT_OFF_FAULT_PORT 100
#define XDPVM_BOOT_OFF_IMAGE_END 104
#define XDPVM_BOOT_SIZE 128

#ifndef __ASSEMBLER__
#include <stdint.h>

/* One per vCPU, little-endian, read-only for the guest. */
struct xdpvm_boot_info {
    uint32_t magic;        /* XDPVM_BOOT_MAGIC */
    uint16_t version;      /* XDPVM_BOOT_VERSION */
    uint16_t size;         /* sizeof(struct xdpvm_boot_info) as the VMM wrote it */
    uint64_t cmdline_addr; /* NUL-terminated ASCII, shared by all vCPUs */
    uint32_t cmdline_len;  /* bytes before the NUL */
    uint32_t flags;        /* XDPVM_BOOT_F_* */
    uint64_t ram_size;     /* RAM is [0, ram_size) */
    uint64_t free_base;    /* RAM nobody else uses: rings, buffers (4 KiB aligned) */
    uint64_t free_size;
    uint64_t mmio_base;    /* PCI MMIO window: BARs live here, mapped uncached */
    uint64_t mmio_size;
    uint32_t tsc_khz;      /* 0 when the VMM does not know it */
    uint32_t num_vcpus;
    uint32_t vcpu_index;   /* 0 .. num_vcpus - 1; vCPU 0 initialises the device */
    uint32_t reserved0;
    uint64_t stack_top;    /* this vCPU's initial RSP */
    uint64_t stack_size;
    uint16_t uart_port;    /* XDPVM_PORT_UART */
    uint16_t exit_port;    /* XDPVM_PORT_DEBUG_EXIT */
    uint16_t fault_port;   /* XDPVM_PORT_FAULT */
    uint16_t reserved1;
    uint64_t image_end;    /* first byte after the highest loaded segment */
    uint64_t reserved2[2];
};

_Static_assert(sizeof(struct xdpvm_boot_info) == XDPVM_BOOT_SIZE, "boot info size");
_Static_assert(__builtin_offsetof(struct xdpvm_boot_info, cmdline_addr) == XDPVM_BOOT_OFF_CMDLINE_ADDR, "cmdline_addr");
_Static_assert(__builtin_offsetof(struct xdpvm_boot_info, flags) == XDPVM_BOOT_OFF_FLAGS, "flags");
_Static_assert(__builtin_offsetof(struct xdpvm_boot_info, free_base) == XDPVM_BOOT_OFF_FREE_BASE, "free_base");
_Static_assert(__builtin_offsetof(struct xdpvm_boot_info, mmio_size) == XDPVM_BOOT_OFF_MMIO_SIZE, "mmio_size");
_Static_assert(__builtin_offsetof(struct xdpvm_boot_info, tsc_khz) == XDPVM_BOOT_OFF_TSC_KHZ, "tsc_khz");
_Static_assert(__builtin_offsetof(struct xdpvm_boot_info, vcpu_index) == XDPVM_BOOT_OFF_VCPU_INDEX, "vcpu_index");
_Static_assert(__builtin_offsetof(struct xdpvm_boot_info, stack_size) == XDPVM_BOOT_OFF_STACK_SIZE, "stack_size");
_Static_assert(__builtin_offsetof(struct xdpvm_boot_info, fault_port) == XDPVM_BOOT_OFF_FAULT_PORT, "fault_port");
_Static_assert(__builtin_offsetof(struct xdpvm_boot_info, image_end) == XDPVM_BOOT_OFF_IMAGE_END, "image_end");
#endif

#endif
