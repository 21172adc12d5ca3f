/*
 * Entry point of the PMD guest. The VMM enters every vCPU here in 64-bit
 * mode at CPL 3 with RSP at the top of its stack and RDI pointing at its
 * struct xdpvm_boot_info (see include/xdpvm_boot.h).
 */
#include "xdpvm_boot.h"

    .section .text.entry, "ax"
    .globl _start
    .type _start, @function
_start:
    xorl %ebp, %ebp          /* end of the frame chain for debuggers */
    andq $-16, %rsp          /* SysV ABI: RSP % 16 == 0 before a call */
    call pmd_main            /* pmd_main(const struct xdpvm_boot_info *) */
    /* pmd_main does not return; if it does, report status 1. */
    movw $XDPVM_PORT_DEBUG_EXIT, %dx
    movb $1, %al
    outb %al, %dx
1:  pause
    jmp 1b
    .size _start, . - _start

    .section .note.GNU-stack, "", @progbits
