/*
 * Driver side of one virtqueue, split (§2.7) or packed (§2.8), for a poll
 * mode driver: every buffer is one descriptor (a 2 KiB packet buffer), used
 * buffers are found by polling, used-buffer notifications are turned off,
 * and the device is notified only when it asks for it (§2.7.7 / §2.7.10
 * split, §2.8.10 / §2.8.21 packed).
 *
 * Buffers are named by a 32-bit pool index that the ring carries back: the
 * descriptor id (split: the head index, packed: the Buffer ID) is taken from
 * a free list and id_buf[id] remembers the pool index.
 */
#ifndef PMD_VIRTQUEUE_H
#define PMD_VIRTQUEUE_H

#include "pmd.h"
#include "virtio_defs.h"

#define VQ_MAX_SIZE 1024

struct vq {
    u16 index;      /* virtqueue index in the device */
    u16 size;       /* Queue Size */
    u16 mask;       /* size - 1 (split rings are a power of 2) */
    u8 packed;
    u8 event_idx;
    u64 notify;     /* address of this queue's notify register (§4.1.4.4) */
    u64 kicks;      /* notifications sent */
    u64 kicks_skipped;

    /* split */
    struct vring_desc *desc;
    struct vring_avail *avail;
    struct vring_used *used;
    volatile u16 *used_event;  /* in the avail ring, after ring[size] */
    volatile u16 *avail_event; /* in the used ring, after ring[size] */
    u16 avail_shadow;          /* next avail->idx */
    u16 avail_published;       /* avail->idx as last written */
    u16 last_used;             /* next used ring entry to read */

    /* packed */
    struct vring_packed_desc *pdesc;
    struct vring_packed_event *driver_evt;
    struct vring_packed_event *device_evt;
    u16 next_avail;
    u16 avail_wrap;     /* Driver Ring Wrap Counter (§2.8.1) */
    u16 avail_flags;    /* AVAIL/USED bits that mark a descriptor available in this lap */
    u16 next_used;
    u16 used_wrap;      /* what AVAIL and USED read as once the device has used a slot in this lap */
    u16 added_since_kick;

    /* common */
    u16 nfree;
    u16 free_ids[VQ_MAX_SIZE];
    u32 id_buf[VQ_MAX_SIZE];
    u8 in_flight[VQ_MAX_SIZE];
};

/* Bytes of guest memory the three areas need, for allocation (split §2.7, packed §2.8). */
u64 vq_desc_bytes(int packed, u16 size);
u64 vq_driver_bytes(int packed, u16 size);
u64 vq_device_bytes(int packed, u16 size);
/* Zeroes the rings and sets up driver state (areas are allocated by the caller; guest-physical addresses). */
void vq_init(struct vq *q, u16 index, u16 size, int packed, int event_idx, u64 desc, u64 driver, u64 device, u64 notify);
/* Asks for used-buffer notifications after all (§2.7.7 flags 0; §2.8.10 ENABLE): the irq= mode's RX queue. */
void vq_enable_interrupts(struct vq *q);

static inline u16 vq_free_slots(const struct vq *q) { return q->nfree; }

/* Makes one buffer available (§2.7.13 split, §2.8.13 packed). Needs vq_free_slots() > 0. */
static inline void vq_add(struct vq *q, u32 buf, u64 addr, u32 len, int device_writable)
{
    u16 id = q->free_ids[--q->nfree];
    q->id_buf[id] = buf;
    q->in_flight[id] = 1;
    if (!q->packed) {
        struct vring_desc *d = &q->desc[id];
        d->addr = addr;
        d->len = len;
        d->flags = device_writable ? VRING_DESC_F_WRITE : 0;
        d->next = 0;
        q->avail->ring[q->avail_shadow & q->mask] = id;
        q->avail_shadow++;
    } else {
        struct vring_packed_desc *d = &q->pdesc[q->next_avail];
        d->addr = addr;
        d->len = len;
        d->id = id;
        /* §2.8.13: the flags write makes the descriptor available, so it comes last (TSO keeps store order). */
        barrier();
        WRITE_ONCE16(d->flags, (u16)(q->avail_flags | (device_writable ? VRING_DESC_F_WRITE : 0)));
        if (++q->next_avail == q->size) {
            q->next_avail = 0;
            q->avail_wrap ^= 1;
            q->avail_flags ^= VRING_PACKED_DESC_F_AVAIL | VRING_PACKED_DESC_F_USED;
        }
        q->added_since_kick++;
    }
}

static inline void vq_kick(struct vq *q)
{
    /* §4.1.5.2: the driver writes the 16-bit queue index to the queue's notify address. */
    mmio_write16(q->notify, q->index);
    q->kicks++;
}

/*
 * Publishes what vq_add queued and notifies the device if it wants to be
 * notified. §2.7.13.3.1 / §2.7.10: avail->idx is written after the ring
 * entries; the device's suppression state is read after a full barrier so
 * that a device that just re-enabled notifications is not missed.
 */
static inline void vq_publish(struct vq *q)
{
    int need;
    if (!q->packed) {
        u16 old = q->avail_published, now = q->avail_shadow;
        if (old == now)
            return;
        barrier();
        WRITE_ONCE16(q->avail->idx, now);
        q->avail_published = now;
        mb();
        if (q->event_idx)
            need = vring_need_event(*q->avail_event, now, old);
        else
            need = !(READ_ONCE16(q->used->flags) & VRING_USED_F_NO_NOTIFY);
    } else {
        u16 added = q->added_since_kick;
        if (!added)
            return;
        q->added_since_kick = 0;
        mb();
        u16 flags = READ_ONCE16(q->device_evt->flags) & 3;
        if (flags != VRING_PACKED_EVENT_FLAG_DESC || !q->event_idx) {
            need = flags != VRING_PACKED_EVENT_FLAG_DISABLE;
        } else {
            /* §2.8.10: off_wrap names a descriptor offset and the wrap counter it belongs to. */
            u16 off_wrap = READ_ONCE16(q->device_evt->off_wrap);
            u16 event = off_wrap & 0x7fff;
            u16 now = q->next_avail, old = (u16)(now - added);
            if ((off_wrap >> VRING_PACKED_EVENT_F_WRAP_CTR) != q->avail_wrap)
                event = (u16)(event - q->size);
            need = vring_need_event(event, now, old);
        }
    }
    if (need)
        vq_kick(q);
    else
        q->kicks_skipped++;
}

/* Takes back one id the device returned; an id the driver did not give out is a device bug. */
static inline u32 vq_release(struct vq *q, u32 id)
{
    if (id >= q->size || !q->in_flight[id])
        fatal(EXIT_DEVICE, "device used a buffer id that is not in flight:", ((u64)q->index << 32) | id);
    q->in_flight[id] = 0;
    q->free_ids[q->nfree++] = (u16)id;
    return q->id_buf[id];
}

/* Collects up to `max` used buffers: pool index and bytes written by the device. */
static inline u32 vq_reap(struct vq *q, u32 *bufs, u32 *lens, u32 max)
{
    u32 n = 0;
    if (!q->packed) {
        u16 used_idx = READ_ONCE16(q->used->idx);
        /* §2.7.8: entries before used->idx are complete; x86 does not reorder these loads. */
        barrier();
        while (n < max && q->last_used != used_idx) {
            struct vring_used_elem *e = &q->used->ring[q->last_used & q->mask];
            lens[n] = e->len;
            bufs[n] = vq_release(q, e->id);
            q->last_used++;
            n++;
        }
        if (n && q->event_idx)
            /* Keep used_event behind the device: no used-buffer notification is ever due (§2.7.10). */
            *q->used_event = (u16)(q->last_used - 1);
    } else {
        while (n < max) {
            struct vring_packed_desc *d = &q->pdesc[q->next_used];
            u16 f = READ_ONCE16(d->flags);
            /* §2.8.2: used when AVAIL == USED == the used wrap counter. */
            if (!!(f & VRING_PACKED_DESC_F_AVAIL) != q->used_wrap || !!(f & VRING_PACKED_DESC_F_USED) != q->used_wrap)
                break;
            barrier();
            lens[n] = d->len;
            bufs[n] = vq_release(q, d->id);
            if (++q->next_used == q->size) {
                q->next_used = 0;
                q->used_wrap ^= 1;
            }
            n++;
        }
    }
    return n;
}

#endif
