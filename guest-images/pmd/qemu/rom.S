/*
 * A 64 KiB stand-in BIOS for running the PMD guest under QEMU's software CPU
 * (TCG) on hosts without /dev/kvm. KVM_SET_SREGS puts a vCPU straight into
 * the loader's entry state; a real CPU has to get there from the reset
 * vector, so this ROM does exactly that and nothing else: from real mode
 * it loads the loader's CR4, CR3, EFER, GDT and CR0 (PE and PG together:
 * QEMU, like hardware, then activates IA-32e mode, SDM vol. 3A §10.8.5),
 * far-jumps into the loader's 64-bit kernel code segment, loads IDTR and
 * TR, and IRETQs to the entry state (CPL 3, IOPL 3) with RDI = boot info.
 *
 * The handoff block at offset 0 is filled in by the test harness from the
 * loader's VcpuBootState; QEMU maps this image at 0xFFFF0000 and aliases
 * it at 0xF0000, where this code runs (so the page tables, which map low
 * memory 1:1, keep it mapped once paging is on).
 */
    .set ROM_BASE, 0xf0000
    .set MSR_EFER, 0xc0000080

    .section .text
    .globl _rom_start
_rom_start:
handoff:
    .ascii "XDPVMROM"           /* +0   magic */
h_cr0:      .quad 0            /* +8   */
h_cr3:      .quad 0            /* +16  */
h_cr4:      .quad 0            /* +24  */
h_efer:     .quad 0            /* +32  */
h_gdtr:     .word 0            /* +40  limit */
            .quad 0            /* +42  base */
            .word 0            /* +50  pad */
h_idtr:     .word 0            /* +52  limit */
            .quad 0            /* +54  base */
            .word 0            /* +62  pad */
h_rip:      .quad 0            /* +64  */
h_rsp:      .quad 0            /* +72  */
h_rdi:      .quad 0            /* +80  */
h_rflags:   .quad 0            /* +88  */
h_cs:       .quad 0            /* +96  */
h_ss:       .quad 0            /* +104 */
h_ds:       .quad 0            /* +112 */
h_tr:       .quad 0            /* +120 */
h_rsp0:     .quad 0            /* +128 a ring-0 stack for the IRETQ frame */
    .balign 16

    .code16
start16:
    cli
    cld
    movw %cs, %ax
    movw %ax, %ds
    movl h_cr4, %eax
    movl %eax, %cr4
    movl h_cr3, %eax
    movl %eax, %cr3
    movl $MSR_EFER, %ecx
    movl h_efer, %eax
    andl $~0x400, %eax          /* LMA is the CPU's to set */
    xorl %edx, %edx
    wrmsr
    lgdtl h_gdtr                /* limit + low 32 bits of base: the GDT lies below 4 GiB */
    movl h_cr0, %eax
    movl %eax, %cr0
    ljmpl $0x08, $(ROM_BASE + entry64)

    .code64
entry64:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movq h_rsp0(%rip), %rsp
    lgdt h_gdtr(%rip)
    lidt h_idtr(%rip)
    /* LTR wants an available TSS; the loader marks it busy because KVM_SET_SREGS loads TR directly. */
    movzwl h_tr(%rip), %eax
    movq h_gdtr+2(%rip), %rbx
    andb $0xfd, 5(%rbx,%rax)
    ltr %ax
    movw h_ds(%rip), %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %fs
    movw %ax, %gs
    pushq h_ss(%rip)
    pushq h_rsp(%rip)
    pushq h_rflags(%rip)
    pushq h_cs(%rip)
    pushq h_rip(%rip)
    movq h_rdi(%rip), %rdi
    xorl %eax, %eax
    xorl %ebx, %ebx
    xorl %ecx, %ecx
    xorl %edx, %edx
    xorl %esi, %esi
    xorl %ebp, %ebp
    iretq

    /* The reset vector: CS base 0xFFFF0000, IP 0xFFF0. */
    .code16
    .org 0xfff0
reset:
    ljmp $0xf000, $start16
    .org 0x10000
