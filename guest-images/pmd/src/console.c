/*
 * Console output on the 8250 THR at 0x3f8 (one `out` per byte: the VMM's
 * UART model prints it, so no LSR polling) and the exit port.
 */
#include "pmd.h"
#include "virtio_defs.h"

u64 g_common_cfg;
static volatile u32 console_lock;

void con_lock(void)
{
    while (__atomic_exchange_n(&console_lock, 1, __ATOMIC_ACQUIRE) != 0)
        cpu_relax();
}

void con_unlock(void)
{
    __atomic_store_n(&console_lock, 0, __ATOMIC_RELEASE);
}

void con_putc(char c)
{
    outb(XDPVM_PORT_UART, (u8)c);
}

void con_puts(const char *s)
{
    while (*s)
        con_putc(*s++);
}

void con_dec(u64 v)
{
    char buf[24];
    int i = 0;
    do {
        buf[i++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (i)
        con_putc(buf[--i]);
}

void con_hex(u64 v)
{
    static const char digits[] = "0123456789abcdef";
    char buf[16];
    int i = 0;
    con_puts("0x");
    do {
        buf[i++] = digits[v & 15];
        v >>= 4;
    } while (v);
    while (i)
        con_putc(buf[--i]);
}

void con_mac(const u8 *mac)
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 6; i++) {
        if (i)
            con_putc(':');
        con_putc(digits[mac[i] >> 4]);
        con_putc(digits[mac[i] & 15]);
    }
}

void pmd_exit(int status)
{
    outb(XDPVM_PORT_DEBUG_EXIT, (u8)status);
    /* The VMM stops the run on that write; if it does not, stay here. */
    for (;;)
        cpu_relax();
}

void fatal(int status, const char *msg, u64 value)
{
    con_puts("xdpvm-pmd: FATAL: ");
    con_puts(msg);
    con_putc(' ');
    con_hex(value);
    con_putc('\n');
    if (g_common_cfg) {
        /* §3.1.1 step 8 / §2.1: the driver gives up on the device. */
        u8 s = mmio_read8(g_common_cfg + VC_DEVICE_STATUS);
        mmio_write8(g_common_cfg + VC_DEVICE_STATUS, s | VS_FAILED);
    }
    pmd_exit(status);
}
