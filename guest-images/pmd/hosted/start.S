/* Entry of the hosted PMD (a Linux process): hosted_main(initial stack: argc, argv...). */
    .text
    .globl _start
    .type _start, @function
_start:
    xorl %ebp, %ebp
    movq %rsp, %rdi
    andq $-16, %rsp
    call hosted_main
    movl $231, %eax          /* exit_group(1): hosted_main does not return */
    movl $1, %edi
    syscall
    .size _start, . - _start

    .section .note.GNU-stack, "", @progbits
