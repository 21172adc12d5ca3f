/* Shared declarations of the PMD guest: port and MMIO access, barriers, console. */
#ifndef PMD_H
#define PMD_H

#include <stddef.h>
#include <stdint.h>
#include "xdpvm_boot.h"

typedef uint8_t u8;
typedef uint16_t u16;
typedef uint32_t u32;
typedef uint64_t u64;

/*
 * Guest-physical vs. CPU addresses. In the guest they are the same (the VMM
 * identity-maps RAM); the hosted build (hosted/, a Linux process standing in
 * for a vCPU in tests without /dev/kvm) sees guest RAM at an offset and does
 * its port and MMIO accesses through the VMM. Addresses handed to the device
 * (descriptors, queue registers) are always guest-physical.
 */
#ifdef PMD_HOSTED
extern u64 g_phys_offset;
static inline void *phys_to_virt(u64 pa) { return (void *)(pa + g_phys_offset); }
void outb(u16 port, u8 v);
void outw(u16 port, u16 v);
void outl(u16 port, u32 v);
u8 inb(u16 port);
u16 inw(u16 port);
u32 inl(u16 port);
u8 mmio_read8(u64 a);
u16 mmio_read16(u64 a);
u32 mmio_read32(u64 a);
void mmio_write8(u64 a, u8 v);
void mmio_write16(u64 a, u16 v);
void mmio_write32(u64 a, u32 v);
/* Lets the VMM service the device now and then while the driver polls (a vCPU gets kicked instead). */
void hosted_tick(u64 now);
#else
static inline void *phys_to_virt(u64 pa) { return (void *)pa; }
static inline void hosted_tick(u64 now) { (void)now; }

/* ---- port I/O (allowed in ring 3 because the VMM enters with IOPL = 3) ---- */
static inline void outb(u16 port, u8 v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outw(u16 port, u16 v) { __asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outl(u16 port, u32 v) { __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port)); }
static inline u8 inb(u16 port) { u8 v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline u16 inw(u16 port) { u16 v; __asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline u32 inl(u16 port) { u32 v; __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port)); return v; }

/* ---- MMIO: one access of exactly the named width (the transport checks widths, §4.1.3.1) ---- */
static inline u8 mmio_read8(u64 a) { return *(volatile u8 *)a; }
static inline u16 mmio_read16(u64 a) { return *(volatile u16 *)a; }
static inline u32 mmio_read32(u64 a) { return *(volatile u32 *)a; }
static inline void mmio_write8(u64 a, u8 v) { *(volatile u8 *)a = v; }
static inline void mmio_write16(u64 a, u16 v) { *(volatile u16 *)a = v; }
static inline void mmio_write32(u64 a, u32 v) { *(volatile u32 *)a = v; }
#endif

/* ---- ordering (x86 is TSO: only store->load needs a fence; Intel SDM vol. 3 §9.2.2) ---- */
#define barrier() __asm__ volatile("" : : : "memory")
/* Full barrier: a locked add is cheaper than mfence and orders ordinary memory the same way. */
static inline void mb(void) { __asm__ volatile("lock; addl $0, -4(%%rsp)" : : : "memory", "cc"); }
static inline void cpu_relax(void) { __asm__ volatile("pause" : : : "memory"); }
static inline u64 rdtsc(void)
{
    u32 lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((u64)hi << 32) | lo;
}

#define READ_ONCE16(p) (*(volatile u16 *)&(p))
#define WRITE_ONCE16(p, v) (*(volatile u16 *)&(p) = (v))

/* ---- exit statuses written to XDPVM_PORT_DEBUG_EXIT ---- */
#define EXIT_OK 0
#define EXIT_FATAL 1
#define EXIT_USAGE 2
#define EXIT_TIMEOUT 3
#define EXIT_NO_DEVICE 4
#define EXIT_DEVICE 5

/* ---- console (console.c) ---- */
void con_lock(void);
void con_unlock(void);
void con_putc(char c);
void con_puts(const char *s);
void con_dec(u64 v);
void con_hex(u64 v);
void con_mac(const u8 *mac);
/* Prints "xdpvm-pmd: FATAL: <msg> <value>", marks the device FAILED if it was set up, exits. */
__attribute__((noreturn)) void fatal(int status, const char *msg, u64 value);
__attribute__((noreturn)) void pmd_exit(int status);
/* Set once a device's common config is known, so fatal() can report FAILED (§3.1.1 step 8). */
extern u64 g_common_cfg;

/* ---- lib.c ---- */
void *memcpy(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
void *memmove(void *dst, const void *src, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int streq(const char *a, const char *b);

#endif
