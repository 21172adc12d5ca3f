/*
 * xdpvm PMD test guest: a bare-metal, ring-3, poll-mode virtio-net driver
 * with testpmd-like forwarding modes. See ../README.md for the boot
 * contract and the command line.
 *
 * vCPU 0 parses the command line, finds and initialises the device (§3.1.1)
 * and sets up every queue pair; then all vCPUs (0 included) poll their own
 * queue pairs (pair p belongs to vCPU p % num_vcpus) until the stop
 * condition, and vCPU 0 prints one XDPVM-PMD-RESULT line and exits.
 */
#include "pmd.h"
#include "virtio_net.h"

#define MAX_PAIRS 16
#define MAX_VCPUS 64
#define BURST_MAX 256
#define BUF_SIZE 2048 /* virtio-net header + a 1514-byte frame, with room to spare */
#define ETH_HLEN 14
#define FRAME_MIN 42   /* Ethernet + IPv4 + UDP headers */
#define FRAME_MAX 1514 /* MTU 1500 without GSO (no offloads are negotiated) */

enum mode { MODE_TXONLY, MODE_RXONLY, MODE_IOFWD };
static const char *const mode_names[] = { "txonly", "rxonly", "io-fwd" };

struct config {
    enum mode mode;
    u32 size;
    u32 burst;
    u64 seconds_ms; /* 0: run until count */
    u64 count;      /* per queue; 0: run for seconds */
    u64 timeout_ms; /* count mode: give up after this long */
    u16 queues;
    u16 qsize;
    int packed;
    int event_idx;
    int verbose;
    int fault; /* 0, or 'p' (#PF), 'g' (#GP), 'u' (#UD): test the VMM's exception reporting */
    u32 irq;   /* 0, or the vector queue 0's RX interrupts (MSI-X entry 0) are sent to: wait for it before polling */
    int intx;  /* MSI-X left off: wait for queue 0's RX interrupt in the ISR register (§4.1.4.5) before polling */
    u16 active; /* pairs enabled with VQ_PAIRS_SET (default: queues); the others get RX buffers but are not polled */
    int have_mac;
    u8 mac[6];
    u8 dst[6];
};

struct pair {
    u16 id;
    struct vq rx, tx;
    u64 buf_base;   /* pool of BUF_SIZE buffers */
    u32 *pool;      /* free buffer indices (a stack) */
    u16 *buf_len;   /* frame bytes of each buffer while it is on the TX ring */
    u32 pool_top;
    u32 pool_count;
    u8 tmpl[VNET_HDR_LEN + FRAME_MAX]; /* txonly: header (zero) + frame */
    /* counters */
    u64 tx_packets, tx_bytes; /* completed by the device */
    u64 tx_sent;              /* put on the TX ring */
    u64 rx_packets, rx_bytes;
    u64 tx_dropped;           /* io-fwd: TX ring full */
    u64 rx_errors;            /* used length impossible for a frame */
    u64 first_tx_tsc;
    u64 end_tsc;
    int stop_sending;
    int done;
    int timed_out;
};

u64 g_tsc_khz;
static struct config cfg;
static struct vnet net;
static struct pair pairs[MAX_PAIRS];
static u64 alloc_next, alloc_end;
static volatile u32 g_ready;
static volatile u32 g_vcpu_done[MAX_VCPUS];
static u64 g_t0, g_deadline, g_timeout;
static u32 g_nvcpu;

/* ------------------------------------------------------------------ memory */

u64 mem_alloc(u64 size, u64 align)
{
    u64 a = (alloc_next + align - 1) & ~(align - 1);
    if (a + size > alloc_end || a + size < a)
        fatal(EXIT_FATAL, "out of guest memory for rings/buffers; bytes wanted:", size);
    alloc_next = a + size;
    return a;
}

static inline u64 buf_addr(const struct pair *p, u32 b) { return p->buf_base + (u64)b * BUF_SIZE; }
static inline u8 *buf_ptr(const struct pair *p, u32 b) { return phys_to_virt(buf_addr(p, b)); }
static inline void pool_put(struct pair *p, u32 b) { p->pool[p->pool_top++] = b; }
static inline u32 pool_get(struct pair *p) { return p->pool[--p->pool_top]; }

/* ---------------------------------------------------------------- command line */

static int parse_u64(const char *s, u64 *out)
{
    u64 v = 0;
    if (!*s)
        return 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > (~0ull - 9) / 10)
            return 0;
        v = v * 10 + (u64)(*s - '0');
    }
    *out = v;
    return 1;
}

/* "1", "2.5", "0.25": milliseconds. */
static int parse_ms(const char *s, u64 *out)
{
    u64 whole = 0, frac = 0, scale = 1000;
    const char *p = s;
    if (!*p)
        return 0;
    for (; *p && *p != '.'; p++) {
        if (*p < '0' || *p > '9' || whole > 1000000000ull)
            return 0;
        whole = whole * 10 + (u64)(*p - '0');
    }
    if (*p == '.') {
        p++;
        for (; *p; p++) {
            if (*p < '0' || *p > '9')
                return 0;
            if (scale > 1) {
                scale /= 10;
                frac += (u64)(*p - '0') * scale;
            }
        }
    }
    *out = whole * 1000 + frac;
    return 1;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int parse_mac(const char *s, u8 *mac)
{
    for (int i = 0; i < 6; i++) {
        int hi = hexval(s[0]), lo = hexval(s[1]);
        if (hi < 0 || lo < 0)
            return 0;
        mac[i] = (u8)(hi << 4 | lo);
        s += 2;
        if (i < 5 && *s++ != ':')
            return 0;
    }
    return *s == 0;
}

static __attribute__((noreturn)) void usage(const char *what, const char *token)
{
    con_puts("xdpvm-pmd: bad command line: ");
    con_puts(what);
    con_puts(" '");
    con_puts(token);
    con_puts("'\nxdpvm-pmd: options: mode=txonly|rxonly|io-fwd size=64 burst=32 seconds=S | count=N "
             "[timeout=S] queues=1 active=N qsize=N packed=0|1 event_idx=0|1 irq=V intx=0|1 mac=xx:xx:xx:xx:xx:xx dst=xx:.. verbose=0|1 fault=pf|gp|ud\n");
    pmd_exit(EXIT_USAGE);
}

static void parse_cmdline(const char *cmdline, u32 len)
{
    static char buf[4096];
    static const u8 default_dst[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x02 };
    cfg.mode = MODE_IOFWD;
    cfg.size = 64;
    cfg.burst = 32;
    cfg.queues = 1;
    cfg.qsize = VQ_MAX_SIZE; /* as Linux and DPDK's virtio PMD: the device's queue size (at most this) */
    cfg.timeout_ms = 30000;
    memcpy(cfg.dst, default_dst, 6);
    if (len >= sizeof(buf))
        usage("longer than 4095 bytes", "");
    memcpy(buf, cmdline, len);
    buf[len] = 0;

    char *p = buf;
    int have_seconds = 0, have_count = 0;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == '\n')
            p++;
        if (!*p)
            break;
        char *tok = p;
        while (*p && *p != ' ' && *p != '\t' && *p != '\n')
            p++;
        if (*p)
            *p++ = 0;
        char *val = tok;
        while (*val && *val != '=')
            val++;
        if (!*val)
            usage("expected key=value, got", tok);
        *val++ = 0;
        u64 v = 0;
        if (streq(tok, "mode")) {
            if (streq(val, "txonly")) cfg.mode = MODE_TXONLY;
            else if (streq(val, "rxonly")) cfg.mode = MODE_RXONLY;
            else if (streq(val, "io-fwd") || streq(val, "io") || streq(val, "iofwd")) cfg.mode = MODE_IOFWD;
            else usage("mode is txonly, rxonly or io-fwd, not", val);
        } else if (streq(tok, "size")) {
            if (!parse_u64(val, &v) || v < FRAME_MIN || v > FRAME_MAX) usage("size is 42..1514, not", val);
            cfg.size = (u32)v;
        } else if (streq(tok, "burst")) {
            if (!parse_u64(val, &v) || v < 1 || v > BURST_MAX) usage("burst is 1..256, not", val);
            cfg.burst = (u32)v;
        } else if (streq(tok, "seconds")) {
            if (!parse_ms(val, &cfg.seconds_ms) || cfg.seconds_ms == 0) usage("seconds is a positive number, not", val);
            have_seconds = 1;
        } else if (streq(tok, "count")) {
            if (!parse_u64(val, &cfg.count) || cfg.count == 0) usage("count is a positive integer, not", val);
            have_count = 1;
        } else if (streq(tok, "timeout")) {
            if (!parse_ms(val, &cfg.timeout_ms) || cfg.timeout_ms == 0) usage("timeout is a positive number, not", val);
        } else if (streq(tok, "queues")) {
            if (!parse_u64(val, &v) || v < 1 || v > MAX_PAIRS) usage("queues is 1..16, not", val);
            cfg.queues = (u16)v;
        } else if (streq(tok, "qsize")) {
            if (!parse_u64(val, &v) || v < 2 || v > VQ_MAX_SIZE || (v & (v - 1))) usage("qsize is a power of 2 in 2..1024, not", val);
            cfg.qsize = (u16)v;
        } else if (streq(tok, "packed")) {
            if (!parse_u64(val, &v) || v > 1) usage("packed is 0 or 1, not", val);
            cfg.packed = (int)v;
        } else if (streq(tok, "event_idx")) {
            if (!parse_u64(val, &v) || v > 1) usage("event_idx is 0 or 1, not", val);
            cfg.event_idx = (int)v;
        } else if (streq(tok, "verbose")) {
            if (!parse_u64(val, &v) || v > 1) usage("verbose is 0 or 1, not", val);
            cfg.verbose = (int)v;
        } else if (streq(tok, "fault")) {
            if (streq(val, "pf")) cfg.fault = 'p';
            else if (streq(val, "gp")) cfg.fault = 'g';
            else if (streq(val, "ud")) cfg.fault = 'u';
            else usage("fault is pf, gp or ud, not", val);
        } else if (streq(tok, "irq")) {
#ifdef PMD_HOSTED
            usage("irq needs a local APIC, which the hosted build has not:", val);
#endif
            if (!parse_u64(val, &v) || v < 32 || v > 254) usage("irq is a vector 32..254, not", val);
            cfg.irq = (u32)v;
        } else if (streq(tok, "intx")) {
            if (!parse_u64(val, &v) || v > 1) usage("intx is 0 or 1, not", val);
            cfg.intx = (int)v;
        } else if (streq(tok, "active")) {
            if (!parse_u64(val, &v) || v < 1 || v > MAX_PAIRS) usage("active is 1..16, not", val);
            cfg.active = (u16)v;
        } else if (streq(tok, "mac")) {
            if (!parse_mac(val, cfg.mac)) usage("mac is xx:xx:xx:xx:xx:xx, not", val);
            cfg.have_mac = 1;
        } else if (streq(tok, "dst")) {
            if (!parse_mac(val, cfg.dst)) usage("dst is xx:xx:xx:xx:xx:xx, not", val);
        } else {
            usage("unknown option", tok);
        }
    }
    if (!have_seconds && !have_count)
        cfg.seconds_ms = 1000;
    if (cfg.irq && cfg.event_idx)
        usage("irq asks for every used-buffer notification: not with event_idx=1", "");
    if (cfg.intx && cfg.event_idx)
        usage("intx asks for every used-buffer notification: not with event_idx=1", "");
    if (cfg.intx && cfg.irq)
        usage("intx leaves MSI-X off: not with irq=", "");
    if (!cfg.active)
        cfg.active = cfg.queues;
    if (cfg.active > cfg.queues)
        usage("active is at most queues:", "");
    if (cfg.active < cfg.queues && cfg.packed)
        usage("active<queues reports the idle pairs' used rings: split rings only (packed=0)", "");
}

/* -------------------------------------------------------------- self-test */

/* fault=...: exercises the VMM's IDT, TSS and exception stubs (README: Exceptions). */
static __attribute__((noreturn)) void fault_on_purpose(void)
{
    con_puts("xdpvm-pmd: faulting on purpose\n");
    if (cfg.fault == 'p')
        __asm__ volatile("movq (%0), %%rax" : : "r"(0x10ull) : "rax", "memory"); /* page 0 is not mapped: #PF, CR2 = 0x10 */
    else if (cfg.fault == 'g')
        __asm__ volatile("hlt"); /* privileged at CPL 3: #GP(0) */
    else
        __asm__ volatile("ud2");
    fatal(EXIT_FATAL, "the fault did not happen", (u64)cfg.fault);
}

/* ------------------------------------------------------------------- time */

/* Intel SDM vol. 3 §18.7 and the 8254 data sheet: PIT channel 2 in mode 0 raises OUT2 (port 0x61 bit 5) at terminal count. */
static u64 calibrate_tsc_with_pit(void)
{
    const u32 ms = 20, latch = 1193182u * ms / 1000;
    u8 v = inb(0x61);
    outb(0x61, (u8)((v & ~0x02) | 0x01)); /* gate channel 2 on, speaker off */
    outb(0x43, 0xb0);                     /* channel 2, lobyte/hibyte, mode 0, binary */
    outb(0x42, (u8)latch);
    outb(0x42, (u8)(latch >> 8));
    /* Mode 0 drives OUT2 low from the control word until terminal count: high now means no PIT answers. */
    if (inb(0x61) & 0x20)
        return 0;
    u64 t0 = rdtsc();
    /* Bounded by reads, there being no other clock: 20 ms is far fewer reads than this even at 0.1 us each. */
    for (u32 i = 0; !(inb(0x61) & 0x20); i++)
        if (i > 500000)
            return 0;
    u64 t1 = rdtsc();
    return (t1 - t0) / ms;
}

static u64 ms_to_cycles(u64 ms) { return ms * g_tsc_khz; }

/* ---------------------------------------------------------------- frames */

static u16 ip_checksum(const u8 *h, u32 len)
{
    u32 sum = 0;
    for (u32 i = 0; i < len; i += 2)
        sum += (u32)h[i] << 8 | h[i + 1];
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (u16)~sum;
}

/* A UDP/IPv4 frame of cfg.size bytes (RFC 2544 benchmark addresses 198.18.0.0/15), behind a zero virtio-net header. */
static void build_template(struct pair *p)
{
    u8 *h = p->tmpl;
    memset(h, 0, sizeof(p->tmpl));
    u8 *f = h + VNET_HDR_LEN;
    u32 n = cfg.size;
    memcpy(f, cfg.dst, 6);
    memcpy(f + 6, cfg.have_mac ? cfg.mac : net.mac, 6);
    f[12] = 0x08; f[13] = 0x00;
    u8 *ip = f + ETH_HLEN;
    u32 ip_len = n - ETH_HLEN;
    ip[0] = 0x45;
    ip[2] = (u8)(ip_len >> 8); ip[3] = (u8)ip_len;
    ip[8] = 64;  /* TTL */
    ip[9] = 17;  /* UDP */
    ip[12] = 198; ip[13] = 18; ip[14] = 0; ip[15] = 1;
    ip[16] = 198; ip[17] = 18; ip[18] = 0; ip[19] = 2;
    u16 c = ip_checksum(ip, 20);
    ip[10] = (u8)(c >> 8); ip[11] = (u8)c;
    u8 *udp = ip + 20;
    u32 udp_len = ip_len - 20;
    u16 sport = (u16)(1024 + p->id), dport = 9; /* per-queue source port: flows stay apart on the receiver */
    udp[0] = (u8)(sport >> 8); udp[1] = (u8)sport;
    udp[2] = (u8)(dport >> 8); udp[3] = (u8)dport;
    udp[4] = (u8)(udp_len >> 8); udp[5] = (u8)udp_len;
    /* UDP checksum 0: none (RFC 768). */
    for (u32 i = 8; i < udp_len; i++)
        udp[i] = (u8)i;
}

/* ------------------------------------------------------------- local APIC */

/*
 * Ring 3 cannot take an interrupt (IF stays 0), but the local APIC still
 * accepts it into IRR, where it stays pending: that is what irq= waits on.
 * Intel SDM vol. 3 §11.4.7.1: a software-disabled APIC drops fixed
 * interrupts, so enable it (SVR bit 8, spurious vector 0xff) first.
 */
#define LAPIC_SVR 0xf0
#define LAPIC_IRR 0x200

static u64 g_irq_wait_cycles;
static int g_irq_seen;
static u64 g_intx_wait_cycles;
static int g_intx_seen;

static void lapic_enable(void)
{
    mmio_write32(XDPVM_LAPIC_BASE + LAPIC_SVR, 0x1ff);
}

static int lapic_irr(u32 vector)
{
    return (mmio_read32(XDPVM_LAPIC_BASE + LAPIC_IRR + 0x10 * (vector / 32)) >> (vector % 32)) & 1;
}

/*
 * irq=: the RX interrupt must not be pending before a frame can have arrived (checked before the first RX
 * buffers are posted: the device cannot use a buffer it does not have), and must arrive once one has.
 */
static void check_no_rx_interrupt_yet(void)
{
    if (lapic_irr(cfg.irq))
        fatal(EXIT_DEVICE, "irq vector pending before any frame was received:", cfg.irq);
}

static void wait_for_rx_interrupt(void)
{
    u64 t0 = rdtsc();
    while (!lapic_irr(cfg.irq)) {
        if (rdtsc() > g_timeout) {
            con_puts("xdpvm-pmd: no interrupt on vector ");
            con_dec(cfg.irq);
            con_puts(" before the timeout\n");
            return;
        }
        cpu_relax();
    }
    g_irq_seen = 1;
    g_irq_wait_cycles = rdtsc() - t0;
    con_puts("xdpvm-pmd: interrupt: vector ");
    con_dec(cfg.irq);
    con_puts(" pending in the local APIC's IRR; used ring idx ");
    con_dec(pairs[0].rx.packed ? 0 : pairs[0].rx.used->idx);
    con_putc('\n');
}

/*
 * intx=: with MSI-X off the device signals a used buffer through INTx and
 * the ISR register (§4.1.4.5); a legacy driver's handler reads ISR, which
 * clears it. Ring 3 takes no interrupt, so vCPU 0 reads ISR instead: it must
 * be clear before a frame arrived, and show the queue interrupt once one has.
 */
#define VIRTIO_ISR_QUEUE 1
static void check_no_rx_isr_yet(void)
{
    u8 isr = mmio_read8(net.pci.isr.addr);
    if (isr & VIRTIO_ISR_QUEUE)
        fatal(EXIT_DEVICE, "ISR shows a queue interrupt before any frame was received:", isr);
}

static void wait_for_rx_isr(void)
{
    u64 t0 = rdtsc();
    while (!(mmio_read8(net.pci.isr.addr) & VIRTIO_ISR_QUEUE)) {
        if (rdtsc() > g_timeout) {
            con_puts("xdpvm-pmd: no queue interrupt in ISR before the timeout\n");
            return;
        }
        cpu_relax();
    }
    g_intx_seen = 1;
    g_intx_wait_cycles = rdtsc() - t0;
    con_puts("xdpvm-pmd: interrupt: ISR queue bit set (INTx); used ring idx ");
    con_dec(pairs[0].rx.packed ? 0 : pairs[0].rx.used->idx);
    con_putc('\n');
}

/* ------------------------------------------------------------- device set-up */

static void setup_pair(struct pair *p, u16 id)
{
    p->id = id;
    /* §5.1.2: receiveq(N) is 2N, transmitq(N) is 2N + 1. */
    /* irq=: queue 0's RX completions raise MSI-X entry 0; everything else is polled. */
    u16 rx_msix = (cfg.irq && id == 0) ? 0 : VIRTIO_MSI_NO_VECTOR;
    vnet_setup_queue(&net, &p->rx, (u16)(2 * id), cfg.qsize, rx_msix);
    vnet_setup_queue(&net, &p->tx, (u16)(2 * id + 1), cfg.qsize, VIRTIO_MSI_NO_VECTOR);
    /* intx=: no vectors at all (MSI-X stays off); queue 0's RX asks for used-buffer notifications. */
    if (rx_msix == 0 || (cfg.intx && id == 0))
        vq_enable_interrupts(&p->rx);
    p->pool_count = (u32)p->rx.size + p->tx.size + BURST_MAX;
    p->buf_base = mem_alloc((u64)p->pool_count * BUF_SIZE, 4096);
    p->pool = phys_to_virt(mem_alloc((u64)p->pool_count * 4, 64));
    p->buf_len = phys_to_virt(mem_alloc((u64)p->pool_count * 2, 64));
    for (u32 i = 0; i < p->pool_count; i++)
        p->pool[i] = p->pool_count - 1 - i;
    p->pool_top = p->pool_count;
    build_template(p);
}

static void refill_rx(struct pair *p)
{
    u32 k = vq_free_slots(&p->rx);
    if (k > p->pool_top)
        k = p->pool_top;
    for (u32 i = 0; i < k; i++) {
        u32 b = pool_get(p);
        /* §5.1.6.3: one device-writable buffer holds the header and the whole frame (no MRG_RXBUF). */
        vq_add(&p->rx, b, buf_addr(p, b), BUF_SIZE, 1);
    }
    vq_publish(&p->rx);
}

static void init_device(const struct xdpvm_boot_info *bi)
{
    pci_find_virtio_net(&net.pci, bi->mmio_base, bi->mmio_size);
    if (cfg.irq) {
        lapic_enable();
        pci_enable_msix(&net.pci, 0, (u8)cfg.irq);
    }
    struct vnet_wants w = { cfg.queues, cfg.packed, cfg.event_idx };
    vnet_negotiate(&net, &w);
    for (u16 i = 0; i < cfg.queues; i++)
        setup_pair(&pairs[i], i);
    vnet_setup_ctrl(&net);
    vnet_driver_ok(&net);
    if (cfg.queues > 1)
        vnet_set_pairs(&net, cfg.active);
    /* Before any RX buffer exists no frame can be received: no queue interrupt may be pending yet. */
    if (cfg.irq)
        check_no_rx_interrupt_yet();
    if (cfg.intx)
        check_no_rx_isr_yet();
    /* Every pair gets RX buffers (and a kick), also those VQ_PAIRS_SET left off: the device must not use them. */
    for (u16 i = 0; i < cfg.queues; i++)
        refill_rx(&pairs[i]);
    for (u16 i = cfg.active; i < cfg.queues; i++)
        pairs[i].done = 1;

    static const char hexd[] = "0123456789abcdef";
    con_puts("xdpvm-pmd: virtio-net at 00:");
    con_putc(hexd[net.pci.dev >> 4]);
    con_putc(hexd[net.pci.dev & 15]);
    con_putc('.');
    con_putc(hexd[net.pci.fn & 7]);
    con_puts(" mac ");
    con_mac(net.mac);
    con_puts(" features ");
    con_hex(net.features);
    con_puts(net.link_status & VIRTIO_NET_S_LINK_UP ? " link up" : " link DOWN");
    con_puts(" pairs ");
    con_dec(cfg.queues);
    con_puts("/");
    con_dec(net.max_pairs);
    con_puts(" qsize ");
    con_dec(pairs[0].rx.size);
    con_puts(cfg.packed ? " packed" : " split");
    con_puts(net.features & FEAT(VIRTIO_F_EVENT_IDX) ? " event_idx\n" : "\n");
    if (cfg.verbose) {
        con_puts("xdpvm-pmd: common ");
        con_hex(net.pci.common.addr);
        con_puts(" notify ");
        con_hex(net.pci.notify.addr);
        con_puts(" x");
        con_dec(net.pci.notify_mult);
        con_puts(" isr ");
        con_hex(net.pci.isr.addr);
        con_puts(" device ");
        con_hex(net.pci.device.addr);
        con_puts(" memory ");
        con_hex(alloc_next);
        con_putc('\n');
    }
}

/* ------------------------------------------------------------------ polling */

static void pair_iter(struct pair *p, u64 now)
{
    u32 bufs[BURST_MAX], lens[BURST_MAX];
    u32 n;

    /* Transmitted buffers come back to the pool. */
    do {
        n = vq_reap(&p->tx, bufs, lens, BURST_MAX);
        for (u32 i = 0; i < n; i++) {
            p->tx_bytes += p->buf_len[bufs[i]];
            pool_put(p, bufs[i]);
        }
        p->tx_packets += n;
    } while (n == BURST_MAX);

    /* Received frames: counted, then dropped (rxonly, txonly) or sent back with MACs swapped (io-fwd). */
    n = vq_reap(&p->rx, bufs, lens, cfg.burst);
    for (u32 i = 0; i < n; i++) {
        u32 b = bufs[i], len = lens[i];
        if (len < VNET_HDR_LEN + ETH_HLEN || len > BUF_SIZE) {
            p->rx_errors++;
            pool_put(p, b);
            continue;
        }
        u32 flen = len - VNET_HDR_LEN;
        p->rx_packets++;
        p->rx_bytes += flen;
        if (cfg.mode == MODE_IOFWD && !p->stop_sending && vq_free_slots(&p->tx)) {
            u8 *h = buf_ptr(p, b);
            u8 *f = h + VNET_HDR_LEN;
            u8 t[6];
            memcpy(t, f, 6);
            memcpy(f, f + 6, 6);
            memcpy(f + 6, t, 6);
            /* §5.1.6.2: a plain frame: flags 0, gso_type NONE (the received header's fields do not apply). */
            memset(h, 0, VNET_HDR_LEN);
            p->buf_len[b] = (u16)flen;
            vq_add(&p->tx, b, buf_addr(p, b), len, 0);
            if (!p->tx_sent++)
                p->first_tx_tsc = now;
            if (cfg.count && p->tx_sent >= cfg.count)
                p->stop_sending = 1;
        } else {
            if (cfg.mode == MODE_IOFWD && !p->stop_sending)
                p->tx_dropped++;
            pool_put(p, b);
        }
    }

    if (cfg.mode == MODE_TXONLY && !p->stop_sending) {
        u32 k = cfg.burst;
        if (k > vq_free_slots(&p->tx)) k = vq_free_slots(&p->tx);
        if (k > p->pool_top) k = p->pool_top;
        if (cfg.count && k > cfg.count - p->tx_sent) k = (u32)(cfg.count - p->tx_sent);
        u32 len = VNET_HDR_LEN + cfg.size;
        for (u32 i = 0; i < k; i++) {
            u32 b = pool_get(p);
            memcpy(buf_ptr(p, b), p->tmpl, len);
            p->buf_len[b] = (u16)cfg.size;
            vq_add(&p->tx, b, buf_addr(p, b), len, 0);
        }
        if (k && !p->tx_sent)
            p->first_tx_tsc = now;
        p->tx_sent += k;
        if (cfg.count && p->tx_sent >= cfg.count)
            p->stop_sending = 1;
    }
    vq_publish(&p->tx);
    refill_rx(p);
}

static void check_stop(struct pair *p, u64 now)
{
    if (cfg.seconds_ms && now >= g_deadline)
        p->stop_sending = 1;
    int finished;
    if (cfg.mode == MODE_RXONLY)
        finished = (cfg.count && p->rx_packets >= cfg.count) || (cfg.seconds_ms && now >= g_deadline);
    else
        /* Done once the device has taken back every frame put on the TX ring. */
        finished = p->stop_sending && p->tx_packets == p->tx_sent;
    if (!finished && now >= g_timeout) {
        p->timed_out = 1;
        finished = 1;
    }
    if (finished) {
        p->done = 1;
        p->end_tsc = now;
    }
}

static void poll_loop(u32 vcpu, u32 nvcpu)
{
    for (;;) {
        int busy = 0;
        for (u32 q = vcpu; q < cfg.queues; q += nvcpu) {
            struct pair *p = &pairs[q];
            if (p->done)
                continue;
            u64 now = rdtsc();
            hosted_tick(now);
            pair_iter(p, now);
            check_stop(p, now);
            busy = 1;
        }
        if (!busy)
            return;
    }
}

/* ------------------------------------------------------------------ result */

static void json_key(const char *k, u64 v, int comma)
{
    if (comma)
        con_putc(',');
    con_putc('"');
    con_puts(k);
    con_puts("\":");
    con_dec(v);
}

static void print_result(u64 boot_tsc)
{
    u64 end = g_t0;
    int timed_out = 0;
    u64 tp = 0, tb = 0, rp = 0, rb = 0, first_tx = 0;
    for (u16 i = 0; i < cfg.queues; i++) {
        struct pair *p = &pairs[i];
        if (p->end_tsc > end) end = p->end_tsc;
        timed_out |= p->timed_out;
        tp += p->tx_packets; tb += p->tx_bytes; rp += p->rx_packets; rb += p->rx_bytes;
        if (p->first_tx_tsc && (!first_tx || p->first_tx_tsc < first_tx)) first_tx = p->first_tx_tsc;
    }
    u64 cycles = end - g_t0;
    u64 us = g_tsc_khz ? cycles * 1000 / g_tsc_khz : 0;

    con_lock();
    con_puts("XDPVM-PMD-RESULT {\"mode\":\"");
    con_puts(mode_names[cfg.mode]);
    con_puts("\",\"ring\":\"");
    con_puts(cfg.packed ? "packed" : "split");
    con_puts("\",\"event_idx\":");
    con_puts(net.features & FEAT(VIRTIO_F_EVENT_IDX) ? "true" : "false");
    json_key("queues", cfg.queues, 1);
    json_key("vcpus", g_nvcpu, 1);
    json_key("size", cfg.size, 1);
    json_key("burst", cfg.burst, 1);
    json_key("qsize", pairs[0].rx.size, 1);
    json_key("tsc_khz", g_tsc_khz, 1);
    json_key("boot_cycles", g_t0 - boot_tsc, 1);
    json_key("first_tx_cycles", first_tx ? first_tx - boot_tsc : 0, 1);
    json_key("cycles", cycles, 1);
    con_puts(",\"seconds\":");
    con_dec(us / 1000000);
    con_putc('.');
    for (u64 d = 100000; d; d /= 10)
        con_putc((char)('0' + (us / d) % 10));
    if (cfg.irq) {
        json_key("irq_vector", cfg.irq, 1);
        con_puts(",\"irq_seen\":");
        con_puts(g_irq_seen ? "true" : "false");
        json_key("irq_wait_cycles", g_irq_wait_cycles, 1);
    }
    if (cfg.intx) {
        con_puts(",\"intx_seen\":");
        con_puts(g_intx_seen ? "true" : "false");
        json_key("intx_wait_cycles", g_intx_wait_cycles, 1);
    }
    json_key("active", cfg.active, 1);
    con_puts(",\"timed_out\":");
    con_puts(timed_out ? "true" : "false");
    json_key("tx_packets", tp, 1);
    json_key("tx_bytes", tb, 1);
    json_key("rx_packets", rp, 1);
    json_key("rx_bytes", rb, 1);
    con_puts(",\"per_queue\":[");
    for (u16 i = 0; i < cfg.queues; i++) {
        struct pair *p = &pairs[i];
        if (i)
            con_putc(',');
        con_putc('{');
        json_key("queue", i, 0);
        json_key("tx_packets", p->tx_packets, 1);
        json_key("tx_bytes", p->tx_bytes, 1);
        json_key("rx_packets", p->rx_packets, 1);
        json_key("rx_bytes", p->rx_bytes, 1);
        json_key("tx_dropped", p->tx_dropped, 1);
        json_key("rx_errors", p->rx_errors, 1);
        json_key("tx_kicks", p->tx.kicks, 1);
        json_key("rx_kicks", p->rx.kicks, 1);
        json_key("kicks_suppressed", p->tx.kicks_skipped + p->rx.kicks_skipped, 1);
        /* Used entries the device wrote to this pair's RX ring (split), consumed or not: 0 for a pair left off. */
        json_key("rx_used", p->rx.packed ? p->rx_packets + p->rx_errors : p->rx.used->idx, 1);
        con_putc('}');
    }
    con_puts("]}\n");
    con_unlock();
}

/* -------------------------------------------------------------------- main */

static void check_boot_info(const struct xdpvm_boot_info *bi)
{
    if (bi->magic != XDPVM_BOOT_MAGIC || bi->version != XDPVM_BOOT_VERSION || bi->size < sizeof(*bi)) {
        con_puts("xdpvm-pmd: FATAL: bad boot info (magic/version/size)\n");
        pmd_exit(EXIT_FATAL);
    }
}

__attribute__((noreturn)) void pmd_main(const struct xdpvm_boot_info *bi);

void pmd_main(const struct xdpvm_boot_info *bi)
{
    u64 boot_tsc = rdtsc();
    check_boot_info(bi);
    u32 vcpu = bi->vcpu_index, nvcpu = bi->num_vcpus;
    if (nvcpu == 0 || nvcpu > MAX_VCPUS || vcpu >= nvcpu)
        fatal(EXIT_FATAL, "bad vCPU index/count in boot info:", ((u64)vcpu << 32) | nvcpu);
    g_nvcpu = nvcpu;

    if (vcpu != 0) {
        /* Secondary vCPUs wait for vCPU 0 to set up the device (release/acquire on x86: plain ordered accesses). */
        while (!g_ready)
            cpu_relax();
        barrier();
        poll_loop(vcpu, nvcpu);
        g_vcpu_done[vcpu] = 1;
        for (;;)
            cpu_relax();
    }

    con_puts("xdpvm-pmd: boot: ");
    con_dec(nvcpu);
    con_puts(" vCPU(s), RAM ");
    con_dec(bi->ram_size >> 20);
    con_puts(" MiB, cmdline '");
    con_puts((const char *)phys_to_virt(bi->cmdline_addr));
    con_puts("'\n");
    parse_cmdline((const char *)phys_to_virt(bi->cmdline_addr), bi->cmdline_len);
    if (cfg.fault)
        fault_on_purpose();

    g_tsc_khz = (bi->flags & XDPVM_BOOT_F_TSC_KHZ) ? bi->tsc_khz : 0;
    if (!g_tsc_khz) {
        g_tsc_khz = calibrate_tsc_with_pit();
        con_puts("xdpvm-pmd: TSC calibrated against the PIT: ");
        con_dec(g_tsc_khz);
        con_puts(" kHz\n");
        if (!g_tsc_khz)
            fatal(EXIT_FATAL, "no TSC frequency (boot info has none and the PIT does not count)", 0);
    }

    alloc_next = bi->free_base;
    alloc_end = bi->free_base + bi->free_size;
    init_device(bi);

    con_puts("xdpvm-pmd: running mode=");
    con_puts(mode_names[cfg.mode]);
    con_puts(" size=");
    con_dec(cfg.size);
    con_puts(" burst=");
    con_dec(cfg.burst);
    if (cfg.count) {
        con_puts(" count=");
        con_dec(cfg.count);
    }
    if (cfg.seconds_ms) {
        con_puts(" ms=");
        con_dec(cfg.seconds_ms);
    }
    con_putc('\n');

    g_t0 = rdtsc();
    g_deadline = g_t0 + ms_to_cycles(cfg.seconds_ms);
    /* With seconds=, the device gets timeout= (default 30 s) past the window to hand back the last TX buffers. */
    g_timeout = g_t0 + ms_to_cycles(cfg.seconds_ms ? cfg.seconds_ms + cfg.timeout_ms : cfg.timeout_ms);
    barrier();
    g_ready = 1;
    if (cfg.irq)
        wait_for_rx_interrupt();
    if (cfg.intx)
        wait_for_rx_isr();
    poll_loop(0, nvcpu);
    g_vcpu_done[0] = 1;
    for (u32 i = 1; i < nvcpu; i++)
        while (!g_vcpu_done[i])
            cpu_relax();
    barrier();

    print_result(boot_tsc);
    int timed_out = (cfg.irq && !g_irq_seen) || (cfg.intx && !g_intx_seen);
    for (u16 i = 0; i < cfg.queues; i++)
        timed_out |= pairs[i].timed_out;
    pmd_exit(timed_out ? EXIT_TIMEOUT : EXIT_OK);
}
