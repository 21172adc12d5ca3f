/*
 * The PMD as a Linux process, for tests on hosts without /dev/kvm: the same
 * driver code, but the vCPU is replaced by this shim. Guest RAM is the VMM's
 * memfd mapped at some address (g_phys_offset); every port and MMIO access
 * becomes a request on a pipe that the VMM answers like a KVM exit (the
 * request is 24 bytes: kind, size, address, value; the reply is the 8-byte
 * value an IN or MMIO read returns). While the driver polls, a TICK request
 * every millisecond stands in for the periodic kick a vCPU thread gets.
 *
 *   pmd-hosted REQUEST_FD REPLY_FD MEMFD RAM_SIZE BOOT_INFO_GPA   (all decimal)
 *
 * No libc: raw system calls.
 */
#include "pmd.h"

enum { REQ_OUT = 1, REQ_IN = 2, REQ_MMIO_WRITE = 3, REQ_MMIO_READ = 4, REQ_TICK = 5 };

struct request {
    u32 kind;
    u32 size;
    u64 addr;
    u64 value;
};

u64 g_phys_offset;
extern u64 g_tsc_khz;
static int req_fd = -1, rep_fd = -1;

static long syscall6(long n, long a, long b, long c, long d, long e, long f)
{
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    long ret;
    __asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9) : "rcx", "r11", "memory");
    return ret;
}

#define SYS_read 0
#define SYS_write 1
#define SYS_mmap 9
#define SYS_clock_gettime 228
#define SYS_exit_group 231

static __attribute__((noreturn)) void die(int status)
{
    syscall6(SYS_exit_group, status, 0, 0, 0, 0, 0);
    __builtin_unreachable();
}

static void io_all(int nr, int fd, void *buf, u64 len)
{
    u8 *p = buf;
    while (len) {
        long n = syscall6(nr, fd, (long)p, (long)len, 0, 0, 0);
        if (n <= 0)
            die(100); /* the VMM went away */
        p += n;
        len -= (u64)n;
    }
}

static u64 call(u32 kind, u32 size, u64 addr, u64 value)
{
    struct request r = { kind, size, addr, value };
    u64 reply;
    io_all(SYS_write, req_fd, &r, sizeof(r));
    io_all(SYS_read, rep_fd, &reply, sizeof(reply));
    return reply;
}

void outb(u16 port, u8 v)
{
    call(REQ_OUT, 1, port, v);
    if (port == XDPVM_PORT_DEBUG_EXIT)
        die(0); /* the VMM has the status; the run is over */
}
void outw(u16 port, u16 v) { call(REQ_OUT, 2, port, v); }
void outl(u16 port, u32 v) { call(REQ_OUT, 4, port, v); }
u8 inb(u16 port) { return (u8)call(REQ_IN, 1, port, 0); }
u16 inw(u16 port) { return (u16)call(REQ_IN, 2, port, 0); }
u32 inl(u16 port) { return (u32)call(REQ_IN, 4, port, 0); }
u8 mmio_read8(u64 a) { return (u8)call(REQ_MMIO_READ, 1, a, 0); }
u16 mmio_read16(u64 a) { return (u16)call(REQ_MMIO_READ, 2, a, 0); }
u32 mmio_read32(u64 a) { return (u32)call(REQ_MMIO_READ, 4, a, 0); }
void mmio_write8(u64 a, u8 v) { call(REQ_MMIO_WRITE, 1, a, v); }
void mmio_write16(u64 a, u16 v) { call(REQ_MMIO_WRITE, 2, a, v); }
void mmio_write32(u64 a, u32 v) { call(REQ_MMIO_WRITE, 4, a, v); }

void hosted_tick(u64 now)
{
    static u64 next;
    if (now < next)
        return;
    call(REQ_TICK, 0, 0, 0);
    next = now + (g_tsc_khz ? g_tsc_khz : 2000000); /* about 1 ms */
}

static u64 parse(const char *s)
{
    u64 v = 0;
    while (*s >= '0' && *s <= '9')
        v = v * 10 + (u64)(*s++ - '0');
    return v;
}

static u64 monotonic_ns(void)
{
    struct { long sec, nsec; } ts;
    syscall6(SYS_clock_gettime, 4 /* CLOCK_MONOTONIC_RAW */, (long)&ts, 0, 0, 0, 0);
    return (u64)ts.sec * 1000000000ull + (u64)ts.nsec;
}

/* This process runs on the host's TSC: measure it against the kernel's clock (20 ms). */
static u32 measure_tsc_khz(void)
{
    u64 n0 = monotonic_ns(), t0 = rdtsc(), n1;
    do
        n1 = monotonic_ns();
    while (n1 - n0 < 20000000ull);
    return (u32)((rdtsc() - t0) * 1000000ull / (n1 - n0)); /* cycles per ns = GHz; x 10^6 = kHz */
}

__attribute__((noreturn)) void pmd_main(const struct xdpvm_boot_info *bi);
__attribute__((noreturn)) void hosted_main(u64 *sp);

void hosted_main(u64 *sp)
{
    u64 argc = sp[0];
    char **argv = (char **)(sp + 1);
    if (argc != 6)
        die(101);
    req_fd = (int)parse(argv[1]);
    rep_fd = (int)parse(argv[2]);
    long memfd = (long)parse(argv[3]);
    u64 size = parse(argv[4]);
    long base = syscall6(SYS_mmap, 0, (long)size, 3 /* PROT_READ | PROT_WRITE */, 1 /* MAP_SHARED */, memfd, 0);
    if (base < 0 && base > -4096)
        die(103);
    g_phys_offset = (u64)base;
    struct xdpvm_boot_info *bi = phys_to_virt(parse(argv[5]));
    if (!(bi->flags & XDPVM_BOOT_F_TSC_KHZ)) {
        /* The VMM did not know the rate; a vCPU would calibrate against the PIT, a process can ask its kernel. */
        bi->tsc_khz = measure_tsc_khz();
        bi->flags |= XDPVM_BOOT_F_TSC_KHZ;
    }
    pmd_main(bi);
}
