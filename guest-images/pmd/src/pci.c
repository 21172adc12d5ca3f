/*
 * PCI configuration mechanism #1 (ports 0xCF8/0xCFC, PCI Local Bus 3.0
 * §3.2.2.3.2), bus 0 enumeration, BARs, and the virtio vendor capabilities
 * (§4.1.4) of a modern virtio-net function.
 */
#include "pci.h"
#include "virtio_defs.h"

#define PCI_CONFIG_ADDRESS 0xcf8
#define PCI_CONFIG_DATA 0xcfc

#define PCI_VENDOR_ID 0x00
#define PCI_COMMAND 0x04
#define PCI_STATUS 0x06
#define PCI_HEADER_TYPE 0x0e
#define PCI_BAR0 0x10
#define PCI_CAP_PTR 0x34
#define PCI_CAP_ID_MSIX 0x11
#define MSIX_CTRL_ENABLE (1u << 15)
#define MSIX_CTRL_FUNCTION_MASK (1u << 14)
#define PCI_STATUS_CAP_LIST (1u << 4)
#define PCI_COMMAND_MEMORY (1u << 1)
#define PCI_COMMAND_MASTER (1u << 2)

static u32 cfg_addr(u8 dev, u8 fn, u8 reg)
{
    return 0x80000000u | ((u32)dev << 11) | ((u32)fn << 8) | (reg & 0xfc);
}

u32 pci_read32(u8 dev, u8 fn, u8 reg)
{
    outl(PCI_CONFIG_ADDRESS, cfg_addr(dev, fn, reg));
    return inl(PCI_CONFIG_DATA);
}

u16 pci_read16(u8 dev, u8 fn, u8 reg)
{
    outl(PCI_CONFIG_ADDRESS, cfg_addr(dev, fn, reg));
    return inw((u16)(PCI_CONFIG_DATA + (reg & 2)));
}

u8 pci_read8(u8 dev, u8 fn, u8 reg)
{
    outl(PCI_CONFIG_ADDRESS, cfg_addr(dev, fn, reg));
    return inb((u16)(PCI_CONFIG_DATA + (reg & 3)));
}

void pci_write16(u8 dev, u8 fn, u8 reg, u16 v)
{
    outl(PCI_CONFIG_ADDRESS, cfg_addr(dev, fn, reg));
    outw((u16)(PCI_CONFIG_DATA + (reg & 2)), v);
}

static u8 bar_reg(u8 bar) { return (u8)(PCI_BAR0 + 4 * bar); }

void pci_write32(u8 dev, u8 fn, u8 reg, u32 v)
{
    outl(PCI_CONFIG_ADDRESS, cfg_addr(dev, fn, reg));
    outl(PCI_CONFIG_DATA, v);
}

/* Whether BAR `bar` is a 64-bit memory BAR (PCI 3.0 §6.2.5.1: type 10b in bits 2:1). */
static int lo_is_mem64(u32 lo) { return !(lo & 1) && ((lo >> 1) & 3) == 2; }

static int bar_is_mem64(u8 dev, u8 fn, u8 bar) { return lo_is_mem64(pci_read32(dev, fn, bar_reg(bar))); }

/* Address a memory BAR decodes (64-bit BARs take two registers). 0 for I/O or unassigned BARs. */
static u64 bar_address(u8 dev, u8 fn, u8 bar)
{
    if (bar > 5)
        return 0;
    u32 lo = pci_read32(dev, fn, bar_reg(bar));
    if (lo & 1)
        return 0; /* I/O BAR: the virtio structures this driver uses live in memory BARs */
    u64 addr = lo & ~0xfull;
    if (lo_is_mem64(lo)) { /* the next register holds the high half */
        if (bar == 5)
            return 0;
        addr |= (u64)pci_read32(dev, fn, bar_reg((u8)(bar + 1))) << 32;
    }
    return addr;
}

/* PCI 3.0 §6.2.5.1: write all ones, read back the size mask, restore. Decoding must be off. */
static u64 bar_size(u8 dev, u8 fn, u8 bar)
{
    int wide = bar_is_mem64(dev, fn, bar) && bar < 5;
    u32 lo = pci_read32(dev, fn, bar_reg(bar));
    u32 hi = wide ? pci_read32(dev, fn, bar_reg((u8)(bar + 1))) : 0;
    pci_write32(dev, fn, bar_reg(bar), 0xffffffffu);
    if (wide)
        pci_write32(dev, fn, bar_reg((u8)(bar + 1)), 0xffffffffu);
    u64 mask = pci_read32(dev, fn, bar_reg(bar)) & ~0xfull;
    mask |= wide ? (u64)pci_read32(dev, fn, bar_reg((u8)(bar + 1))) << 32 : 0xffffffff00000000ull;
    pci_write32(dev, fn, bar_reg(bar), lo);
    if (wide)
        pci_write32(dev, fn, bar_reg((u8)(bar + 1)), hi);
    return mask ? ~mask + 1 : 0;
}

/* Highest end of any memory BAR on bus 0 that already decodes inside the window: where free space starts. */
static u64 window_used_top(u64 mmio_base, u64 mmio_size)
{
    u64 top = mmio_base;
    for (u8 dev = 0; dev < 32; dev++) {
        u8 fns = 1;
        for (u8 fn = 0; fn < fns; fn++) {
            if ((pci_read32(dev, fn, PCI_VENDOR_ID) & 0xffff) == 0xffff)
                continue;
            u8 ht = pci_read8(dev, fn, PCI_HEADER_TYPE);
            if (fn == 0 && (ht & 0x80))
                fns = 8;
            if ((ht & 0x7f) != 0)
                continue; /* only type 0 headers have six BARs */
            u16 cmd = pci_read16(dev, fn, PCI_COMMAND);
            pci_write16(dev, fn, PCI_COMMAND, (u16)(cmd & ~PCI_COMMAND_MEMORY)); /* sizing needs decoding off */
            for (u8 bar = 0; bar < 6; bar++) {
                u64 a = bar_address(dev, fn, bar);
                int wide = bar_is_mem64(dev, fn, bar);
                if (a >= mmio_base && a < mmio_base + mmio_size) {
                    u64 end = a + bar_size(dev, fn, bar);
                    if (end > top)
                        top = end;
                }
                if (wide)
                    bar++;
            }
            pci_write16(dev, fn, PCI_COMMAND, cmd);
        }
    }
    return top;
}

/*
 * Firmware normally places BARs (xdpvm's PciBus does, as a BIOS would); on a
 * machine without firmware (e.g. QEMU started with a bare -bios stub) they
 * read 0. Then this driver places the ones it needs in the MMIO window.
 */
static void assign_bar_if_needed(u8 dev, u8 fn, u8 bar, u64 mmio_base, u64 mmio_size, u64 *next)
{
    u64 a = bar_address(dev, fn, bar);
    if (a >= mmio_base && a < mmio_base + mmio_size)
        return;
    u32 lo = pci_read32(dev, fn, bar_reg(bar));
    if (lo & 1)
        fatal(EXIT_DEVICE, "virtio structure in an I/O BAR (not supported):", bar);
    /* Where free space starts is probed only now: with firmware-placed BARs no device is sized at all. */
    if (!*next)
        *next = window_used_top(mmio_base, mmio_size);
    u64 size = bar_size(dev, fn, bar);
    if (!size || (size & (size - 1)))
        fatal(EXIT_DEVICE, "BAR has no valid size:", bar);
    u64 at = (*next + size - 1) & ~(size - 1);
    if (at + size > mmio_base + mmio_size)
        fatal(EXIT_DEVICE, "BAR does not fit in the PCI MMIO window; size:", size);
    pci_write32(dev, fn, bar_reg(bar), (u32)at | (lo & 0xf));
    if (bar_is_mem64(dev, fn, bar))
        pci_write32(dev, fn, bar_reg((u8)(bar + 1)), (u32)(at >> 32));
    else if (at >> 32)
        fatal(EXIT_DEVICE, "32-bit BAR cannot reach the window:", at);
    *next = at + size;
    con_puts("xdpvm-pmd: assigned BAR");
    con_dec(bar);
    con_puts(" at ");
    con_hex(at);
    con_puts(" size ");
    con_hex(size);
    con_putc('\n');
}

static int find_virtio_net(u8 *dev_out, u8 *fn_out)
{
    for (u8 dev = 0; dev < 32; dev++) {
        u8 fns = 1;
        for (u8 fn = 0; fn < fns; fn++) {
            u32 id = pci_read32(dev, fn, PCI_VENDOR_ID);
            if ((id & 0xffff) == 0xffff)
                continue; /* master abort: no function here */
            if (fn == 0 && (pci_read8(dev, 0, PCI_HEADER_TYPE) & 0x80))
                fns = 8;
            if ((id & 0xffff) == VIRTIO_PCI_VENDOR && (id >> 16) == VIRTIO_PCI_DEVICE_NET) {
                *dev_out = dev;
                *fn_out = fn;
                return 1;
            }
        }
    }
    return 0;
}

static u64 g_mmio_base, g_mmio_size;

/*
 * The capability list, read once. Every config read is a VM exit (~0.2 ms
 * each under a PVM host, most of this guest's boot), so each capability is
 * read a dword at a time: ID, next pointer, and cfg_type of a virtio
 * capability (§4.1.4: cap_vndr, cap_next, cap_len, cfg_type) or MSI-X
 * Message Control (PCI 3.0 §6.8.2) in the first, the BAR in the second.
 */
#define MAX_CAPS 48

struct cap {
    u8 ptr, id, type, bar;
    u16 upper; /* bits 31:16 of the first dword: MSI-X Message Control */
};

/* BAR addresses as read once (bar_address), until this driver moves one. */
struct bar_cache {
    u8 known;
    u64 addr[6];
};

static u64 cached_bar(const struct virtio_pci_dev *d, struct bar_cache *c, u8 bar)
{
    if (bar > 5)
        return 0;
    if (!(c->known & (1u << bar))) {
        c->addr[bar] = bar_address(d->dev, d->fn, bar);
        c->known |= (u8)(1u << bar);
    }
    return c->addr[bar];
}

static int read_caps(const struct virtio_pci_dev *d, struct cap *caps)
{
    int n = 0;
    u8 ptr = pci_read8(d->dev, d->fn, PCI_CAP_PTR) & 0xfc;
    while (ptr && n < MAX_CAPS) {
        u32 head = pci_read32(d->dev, d->fn, ptr);
        struct cap *c = &caps[n++];
        c->ptr = ptr;
        c->id = (u8)head;
        c->type = (u8)(head >> 24);
        c->upper = (u16)(head >> 16);
        c->bar = c->id == PCI_CAP_ID_VNDR ? (u8)pci_read32(d->dev, d->fn, (u8)(ptr + VCAP_BAR)) : 0xff;
        ptr = (u8)(head >> 8) & 0xfc;
    }
    return n;
}

void pci_find_virtio_net(struct virtio_pci_dev *d, u64 mmio_base, u64 mmio_size)
{
    memset(d, 0, sizeof(*d));
    g_mmio_base = mmio_base;
    g_mmio_size = mmio_size;
    if (!find_virtio_net(&d->dev, &d->fn))
        fatal(EXIT_NO_DEVICE, "no virtio-net PCI function (1af4:1041) on bus 0:", 0);

    if (!(pci_read16(d->dev, d->fn, PCI_STATUS) & PCI_STATUS_CAP_LIST))
        fatal(EXIT_DEVICE, "virtio-net function has no capability list:", d->dev);

    /* BARs the virtio capabilities name must decode inside the window (assign them if firmware did not). */
    u16 cmd = pci_read16(d->dev, d->fn, PCI_COMMAND);
    pci_write16(d->dev, d->fn, PCI_COMMAND, (u16)(cmd & ~(PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER)));
    struct cap caps[MAX_CAPS];
    int ncaps = read_caps(d, caps);
    struct bar_cache bars = { 0, { 0 } };
    u64 next_free = 0; /* window_used_top(), on the first BAR that needs placing */
    for (int i = 0; i < ncaps; i++) {
        const struct cap *c = &caps[i];
        if (c->id != PCI_CAP_ID_VNDR || c->type < VIRTIO_PCI_CAP_COMMON_CFG || c->type > VIRTIO_PCI_CAP_DEVICE_CFG || c->bar > 5)
            continue;
        u64 a = cached_bar(d, &bars, c->bar);
        if (a >= mmio_base && a < mmio_base + mmio_size)
            continue;
        assign_bar_if_needed(d->dev, d->fn, c->bar, mmio_base, mmio_size, &next_free);
        bars.known &= (u8)~(1u << c->bar); /* moved: read it again */
    }

    /* §4.1.4: the first capability of each type the driver can use wins. */
    for (int i = 0; i < ncaps; i++) {
        const struct cap *c = &caps[i];
        u8 ptr = c->ptr;
        if (c->id == PCI_CAP_ID_MSIX && !d->msix_cap) {
            /* PCI 3.0 §6.8.2: Message Control (table size - 1 in bits 10:0), then Table Offset/BIR. */
            u32 table = pci_read32(d->dev, d->fn, (u8)(ptr + 4));
            u64 base = cached_bar(d, &bars, (u8)(table & 7));
            if (base) {
                d->msix_cap = ptr;
                d->msix_size = (u16)((c->upper & 0x7ff) + 1);
                d->msix_table = base + (table & ~7u);
            }
        }
        if (c->id == PCI_CAP_ID_VNDR) {
            struct virtio_region *r = 0;
            if (c->type == VIRTIO_PCI_CAP_COMMON_CFG) r = &d->common;
            else if (c->type == VIRTIO_PCI_CAP_NOTIFY_CFG) r = &d->notify;
            else if (c->type == VIRTIO_PCI_CAP_ISR_CFG) r = &d->isr;
            else if (c->type == VIRTIO_PCI_CAP_DEVICE_CFG) r = &d->device;
            if (!r || r->addr)
                continue;
            u64 base = cached_bar(d, &bars, c->bar);
            /* §4.1.4.1: skip capabilities naming a reserved BAR or one this driver cannot map. */
            if (!base)
                continue;
            r->addr = base + pci_read32(d->dev, d->fn, (u8)(ptr + VCAP_OFFSET));
            r->len = pci_read32(d->dev, d->fn, (u8)(ptr + VCAP_LENGTH));
            r->bar = c->bar;
            if (c->type == VIRTIO_PCI_CAP_NOTIFY_CFG)
                d->notify_mult = pci_read32(d->dev, d->fn, (u8)(ptr + VCAP_NOTIFY_MULT));
        }
    }
    if (!d->common.addr) fatal(EXIT_DEVICE, "no usable COMMON_CFG capability (§4.1.4.3)", 0);
    if (!d->notify.addr) fatal(EXIT_DEVICE, "no usable NOTIFY_CFG capability (§4.1.4.4)", 0);
    if (!d->isr.addr) fatal(EXIT_DEVICE, "no usable ISR_CFG capability (§4.1.4.5)", 0);
    if (!d->device.addr) fatal(EXIT_DEVICE, "no usable DEVICE_CFG capability (virtio-net has a config, §5.1.4)", 0);
    if (d->common.len < VC_COMMON_MIN_LEN) fatal(EXIT_DEVICE, "COMMON_CFG shorter than struct virtio_pci_common_cfg:", d->common.len);

    /* Only the MMIO window is mapped (uncached) by the boot contract: the structures must lie in it. */
    struct virtio_region *all[4] = { &d->common, &d->notify, &d->isr, &d->device };
    for (int i = 0; i < 4; i++) {
        u64 a = all[i]->addr, end = a + all[i]->len;
        if (a < mmio_base || end > mmio_base + mmio_size || end < a)
            fatal(EXIT_DEVICE, "virtio structure outside the PCI MMIO window:", a);
    }

    /* Memory decoding and bus mastering (the device reads and writes the rings in guest RAM). */
    pci_write16(d->dev, d->fn, PCI_COMMAND, (u16)(cmd | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER));
    if ((pci_read16(d->dev, d->fn, PCI_COMMAND) & (PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER)) !=
        (PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER))
        fatal(EXIT_DEVICE, "command register refused memory space / bus master:", cmd);
}

void pci_enable_msix(struct virtio_pci_dev *d, u16 entry, u8 vector)
{
    if (!d->msix_cap)
        fatal(EXIT_DEVICE, "irq= needs MSI-X, and the device has no usable MSI-X capability", 0);
    if (entry >= d->msix_size)
        fatal(EXIT_DEVICE, "MSI-X table too small for entry:", entry);
    u64 e = d->msix_table + 16ull * entry;
    if (e < g_mmio_base || e + 16 > g_mmio_base + g_mmio_size)
        fatal(EXIT_DEVICE, "MSI-X table outside the PCI MMIO window:", e);
    /* Intel SDM vol. 3 §11.11: address 0xFEE, destination APIC id 0 in bits 19:12, physical mode; data: fixed, edge, vector. */
    mmio_write32(e + 0, XDPVM_LAPIC_BASE);
    mmio_write32(e + 4, 0);
    mmio_write32(e + 8, vector);
    mmio_write32(e + 12, 0); /* vector control: unmasked */
    u16 ctrl = pci_read16(d->dev, d->fn, (u8)(d->msix_cap + 2));
    pci_write16(d->dev, d->fn, (u8)(d->msix_cap + 2), (u16)((ctrl | MSIX_CTRL_ENABLE) & ~MSIX_CTRL_FUNCTION_MASK));
    if (!(pci_read16(d->dev, d->fn, (u8)(d->msix_cap + 2)) & MSIX_CTRL_ENABLE))
        fatal(EXIT_DEVICE, "MSI-X enable did not stick", 0);
}
