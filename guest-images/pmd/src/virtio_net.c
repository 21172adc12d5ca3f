/*
 * virtio-net device initialisation over the modern PCI transport, as a
 * driver must do it (§3.1.1), plus the control queue (§5.1.6.5).
 */
#include "virtio_net.h"

extern u64 g_tsc_khz;

static u64 deadline_ms(u64 ms)
{
    /* Without a known TSC rate, assume a fast one: waits then last longer, never shorter. */
    return rdtsc() + ms * (g_tsc_khz ? g_tsc_khz : 5000000);
}

static u64 common(struct vnet *n, u32 off) { return n->pci.common.addr + off; }

static u8 get_status(struct vnet *n) { return mmio_read8(common(n, VC_DEVICE_STATUS)); }

static void add_status(struct vnet *n, u8 bits)
{
    /* §2.1.2: the driver only ever adds bits; reading back first keeps the ones already set. */
    mmio_write8(common(n, VC_DEVICE_STATUS), (u8)(get_status(n) | bits));
}

static void write64(u64 addr, u64 v)
{
    /* §4.1.3.1: 64-bit fields are written as two 32-bit halves, low first. */
    mmio_write32(addr, (u32)v);
    mmio_write32(addr + 4, (u32)(v >> 32));
}

static u64 read_device_features(struct vnet *n)
{
    mmio_write32(common(n, VC_DEVICE_FEATURE_SELECT), 0);
    u64 lo = mmio_read32(common(n, VC_DEVICE_FEATURE));
    mmio_write32(common(n, VC_DEVICE_FEATURE_SELECT), 1);
    u64 hi = mmio_read32(common(n, VC_DEVICE_FEATURE));
    return lo | (hi << 32);
}

static void write_driver_features(struct vnet *n, u64 f)
{
    mmio_write32(common(n, VC_DRIVER_FEATURE_SELECT), 0);
    mmio_write32(common(n, VC_DRIVER_FEATURE), (u32)f);
    mmio_write32(common(n, VC_DRIVER_FEATURE_SELECT), 1);
    mmio_write32(common(n, VC_DRIVER_FEATURE), (u32)(f >> 32));
}

static void read_net_config(struct vnet *n)
{
    u64 cfg = n->pci.device.addr;
    u8 gen;
    /* §2.5.1 / §4.1.4.3.1: re-read until config_generation is stable around the reads. */
    int tries = 0;
    do {
        if (++tries > 100)
            fatal(EXIT_DEVICE, "config_generation never settles", 0);
        gen = mmio_read8(common(n, VC_CONFIG_GENERATION));
        if (n->features & FEAT(VIRTIO_NET_F_MAC))
            for (int i = 0; i < 6; i++)
                n->mac[i] = mmio_read8(cfg + VNET_CFG_MAC + i);
        n->link_status = (n->features & FEAT(VIRTIO_NET_F_STATUS)) ? mmio_read16(cfg + VNET_CFG_STATUS) : VIRTIO_NET_S_LINK_UP;
        n->max_pairs = (n->features & FEAT(VIRTIO_NET_F_MQ)) ? mmio_read16(cfg + VNET_CFG_MAX_PAIRS) : 1;
    } while (gen != mmio_read8(common(n, VC_CONFIG_GENERATION)));
    if (!(n->features & FEAT(VIRTIO_NET_F_MAC))) {
        /* §5.1.5: without VIRTIO_NET_F_MAC the driver picks an address itself (locally administered). */
        static const u8 fallback[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x01 };
        memcpy(n->mac, fallback, 6);
    }
}

void vnet_negotiate(struct vnet *n, const struct vnet_wants *w)
{
    g_common_cfg = n->pci.common.addr;

    /* §3.1.1 step 1 and §4.1.4.3.2: reset, then wait for device_status to read 0. */
    mmio_write8(common(n, VC_DEVICE_STATUS), 0);
    u64 until = deadline_ms(1000);
    while (get_status(n) != 0)
        if (rdtsc() > until)
            fatal(EXIT_DEVICE, "device did not finish reset", get_status(n));

    add_status(n, VS_ACKNOWLEDGE); /* step 2 */
    add_status(n, VS_DRIVER);      /* step 3 */

    /* Step 4: read the device's features and pick ours. */
    n->offered = read_device_features(n);
    if (!(n->offered & FEAT(VIRTIO_F_VERSION_1)))
        fatal(EXIT_DEVICE, "device does not offer VIRTIO_F_VERSION_1 (legacy devices are not supported):", n->offered);
    u64 want = FEAT(VIRTIO_F_VERSION_1);
    /* Identity-mapped guest, no IOMMU: the platform's DMA rules are already met; take them if offered (§6.1). */
    want |= n->offered & (FEAT(VIRTIO_F_ACCESS_PLATFORM) | FEAT(VIRTIO_F_ORDER_PLATFORM));
    want |= n->offered & (FEAT(VIRTIO_NET_F_MAC) | FEAT(VIRTIO_NET_F_STATUS));
    if (w->event_idx)
        want |= n->offered & FEAT(VIRTIO_F_EVENT_IDX);
    if (w->packed) {
        if (!(n->offered & FEAT(VIRTIO_F_RING_PACKED)))
            fatal(EXIT_DEVICE, "packed=1 but the device does not offer VIRTIO_F_RING_PACKED:", n->offered);
        want |= FEAT(VIRTIO_F_RING_PACKED);
    }
    if (w->pairs > 1) {
        /* §5.1.3.1: MQ needs CTRL_VQ. */
        u64 mq = FEAT(VIRTIO_NET_F_MQ) | FEAT(VIRTIO_NET_F_CTRL_VQ);
        if ((n->offered & mq) != mq)
            fatal(EXIT_DEVICE, "queues>1 needs VIRTIO_NET_F_MQ and VIRTIO_NET_F_CTRL_VQ:", n->offered);
        want |= mq;
    }
    write_driver_features(n, want);

    /* Steps 5-6: FEATURES_OK, then re-read it: a device that refuses clears it. */
    add_status(n, VS_FEATURES_OK);
    if (!(get_status(n) & VS_FEATURES_OK))
        fatal(EXIT_DEVICE, "device refused the features:", want);
    n->features = want;

    read_net_config(n);
    if (w->pairs > n->max_pairs)
        fatal(EXIT_DEVICE, "more queue pairs asked than max_virtqueue_pairs:", n->max_pairs);
    n->num_queues = mmio_read16(common(n, VC_NUM_QUEUES));
    /* §5.1.2: receiveq1..N, transmitq1..N, then the control queue (index 2N with MQ, else 2). */
    u16 needed = (u16)(2 * (n->features & FEAT(VIRTIO_NET_F_MQ) ? n->max_pairs : 1) +
                       ((n->features & FEAT(VIRTIO_NET_F_CTRL_VQ)) ? 1 : 0));
    if (n->num_queues < needed)
        fatal(EXIT_DEVICE, "device has fewer virtqueues than §5.1.2 implies:", n->num_queues);
}

void vnet_setup_queue(struct vnet *n, struct vq *q, u16 index, u16 want, u16 msix)
{
    int packed = (n->features & FEAT(VIRTIO_F_RING_PACKED)) != 0;
    int event_idx = (n->features & FEAT(VIRTIO_F_EVENT_IDX)) != 0;
    mmio_write16(common(n, VC_QUEUE_SELECT), index);
    u16 max = mmio_read16(common(n, VC_QUEUE_SIZE));
    if (max == 0)
        fatal(EXIT_DEVICE, "virtqueue not available (queue_size 0):", index);
    if (mmio_read16(common(n, VC_QUEUE_ENABLE)))
        fatal(EXIT_DEVICE, "virtqueue already enabled after reset:", index);
    u16 size = want < max ? want : max;
    if (size > VQ_MAX_SIZE)
        size = VQ_MAX_SIZE;
    /* Split rings need a power of 2 (§2.7); this driver uses one for packed rings too. */
    while (size & (size - 1))
        size &= (u16)(size - 1);
    mmio_write16(common(n, VC_QUEUE_SIZE), size);
    /* §4.1.5.1.2: the queue's MSI-X entry (NO_VECTOR: polled); a device that cannot map it reads back NO_VECTOR. */
    mmio_write16(common(n, VC_QUEUE_MSIX_VECTOR), msix);
    if (mmio_read16(common(n, VC_QUEUE_MSIX_VECTOR)) != msix)
        fatal(EXIT_DEVICE, "device refused the MSI-X vector of virtqueue:", index);

    /* §2.7 alignment: desc 16, avail 2, used 4; packed §2.8: desc 16, event structures 4. Page-aligned here. */
    u64 desc = mem_alloc(vq_desc_bytes(packed, size), 4096);
    u64 driver = mem_alloc(vq_driver_bytes(packed, size), 4096);
    u64 device = mem_alloc(vq_device_bytes(packed, size), 4096);

    u16 notify_off = mmio_read16(common(n, VC_QUEUE_NOTIFY_OFF));
    u64 off = (u64)notify_off * n->pci.notify_mult;
    /* §4.1.4.4: the notify structure must hold the queue's 16-bit notify register. */
    if (off + 2 > n->pci.notify.len)
        fatal(EXIT_DEVICE, "queue notify address outside the notify structure:", index);
    vq_init(q, index, size, packed, event_idx, desc, driver, device, n->pci.notify.addr + off);

    write64(common(n, VC_QUEUE_DESC), desc);
    write64(common(n, VC_QUEUE_DRIVER), driver);
    write64(common(n, VC_QUEUE_DEVICE), device);
    mmio_write16(common(n, VC_QUEUE_ENABLE), 1);
    if (mmio_read16(common(n, VC_QUEUE_ENABLE)) != 1)
        fatal(EXIT_DEVICE, "device did not enable virtqueue:", index);
}

void vnet_setup_ctrl(struct vnet *n)
{
    if (!(n->features & FEAT(VIRTIO_NET_F_CTRL_VQ)))
        return;
    u16 index = (u16)((n->features & FEAT(VIRTIO_NET_F_MQ)) ? 2 * n->max_pairs : 2);
    vnet_setup_queue(n, &n->ctrl, index, 64, VIRTIO_MSI_NO_VECTOR);
    n->ctrl_buf = mem_alloc(128, 64);
}

void vnet_driver_ok(struct vnet *n)
{
    add_status(n, VS_DRIVER_OK);
    u8 s = get_status(n);
    if (!(s & VS_DRIVER_OK) || (s & VS_DEVICE_NEEDS_RESET))
        fatal(EXIT_DEVICE, "device did not accept DRIVER_OK:", s);
}

/* Puts one two-descriptor chain (command readable, ack writable) on the control queue and waits for it. */
static u8 ctrl_command(struct vnet *n, u8 cls, u8 cmd, const u8 *data, u32 len)
{
    struct vq *q = &n->ctrl;
    u64 buf = n->ctrl_buf, ack = buf + 64;
    if (len > 60)
        fatal(EXIT_FATAL, "control command too long:", len);
    volatile u8 *cpu = phys_to_virt(buf);
    cpu[0] = cls;
    cpu[1] = cmd;
    memcpy((void *)(cpu + 2), data, len);
    cpu[64] = 0xff; /* ack */

    if (!q->packed) {
        /* Descriptors 0 and 1, one command at a time (§2.7.5 chaining with NEXT). */
        q->desc[0] = (struct vring_desc){ buf, 2 + len, VRING_DESC_F_NEXT, 1 };
        q->desc[1] = (struct vring_desc){ ack, 1, VRING_DESC_F_WRITE, 0 };
        q->avail->ring[q->avail_shadow & q->mask] = 0;
        q->avail_shadow++;
        barrier();
        WRITE_ONCE16(q->avail->idx, q->avail_shadow);
        q->avail_published = q->avail_shadow;
    } else {
        /* §2.8.6: a chain occupies consecutive slots; the first one's flags are written last. */
        u16 a = q->next_avail, b = (u16)((a + 1) & q->mask);
        u16 fa = q->avail_flags, fb = b == 0 ? (u16)(fa ^ (VRING_PACKED_DESC_F_AVAIL | VRING_PACKED_DESC_F_USED)) : fa;
        q->pdesc[a].addr = buf;
        q->pdesc[a].len = 2 + len;
        q->pdesc[a].id = 0;
        q->pdesc[b].addr = ack;
        q->pdesc[b].len = 1;
        q->pdesc[b].id = 0;
        barrier();
        WRITE_ONCE16(q->pdesc[b].flags, (u16)(fb | VRING_DESC_F_WRITE));
        barrier();
        WRITE_ONCE16(q->pdesc[a].flags, (u16)(fa | VRING_DESC_F_NEXT));
        for (int i = 0; i < 2; i++)
            if (++q->next_avail == q->size) {
                q->next_avail = 0;
                q->avail_wrap ^= 1;
                q->avail_flags ^= VRING_PACKED_DESC_F_AVAIL | VRING_PACKED_DESC_F_USED;
            }
    }
    mb();
    vq_kick(q); /* the control queue is rare: always notify */

    u64 until = deadline_ms(2000);
    for (;;) {
        if (!q->packed) {
            if (READ_ONCE16(q->used->idx) == q->avail_shadow) {
                q->last_used = q->avail_shadow;
                break;
            }
        } else {
            u16 f = READ_ONCE16(q->pdesc[q->next_used].flags);
            if (!!(f & VRING_PACKED_DESC_F_AVAIL) == q->used_wrap && !!(f & VRING_PACKED_DESC_F_USED) == q->used_wrap) {
                /* §2.8.9: one used element per chain; the driver skips the chain's slots. */
                for (int i = 0; i < 2; i++)
                    if (++q->next_used == q->size) {
                        q->next_used = 0;
                        q->used_wrap ^= 1;
                    }
                break;
            }
        }
        if (rdtsc() > until)
            fatal(EXIT_DEVICE, "control queue command not answered: class/cmd", ((u64)cls << 8) | cmd);
        cpu_relax();
    }
    barrier();
    return cpu[64];
}

void vnet_set_pairs(struct vnet *n, u16 pairs)
{
    u8 data[2] = { (u8)pairs, (u8)(pairs >> 8) };
    u8 ack = ctrl_command(n, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, data, 2);
    if (ack != VIRTIO_NET_OK)
        fatal(EXIT_DEVICE, "VQ_PAIRS_SET refused, ack", ack);
}
