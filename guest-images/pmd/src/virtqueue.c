/* Virtqueue set-up: ring sizes (§2.7 split, §2.8 packed) and initial driver state. */
#include "virtqueue.h"

u64 vq_desc_bytes(int packed, u16 size)
{
    /* split: struct virtq_desc[size]; packed: struct pvirtq_desc[size]: both 16 bytes each */
    (void)packed;
    return (u64)size * 16;
}

u64 vq_driver_bytes(int packed, u16 size)
{
    /* split: flags, idx, ring[size], used_event (§2.7.6); packed: struct pvirtq_event_suppress */
    return packed ? 4 : 6 + 2 * (u64)size;
}

u64 vq_device_bytes(int packed, u16 size)
{
    /* split: flags, idx, ring[size] of 8 bytes, avail_event (§2.7.8); packed: event suppression */
    return packed ? 4 : 6 + 8 * (u64)size;
}

void vq_init(struct vq *q, u16 index, u16 size, int packed, int event_idx, u64 desc, u64 driver, u64 device, u64 notify)
{
    memset(q, 0, sizeof(*q));
    q->index = index;
    q->size = size;
    q->mask = (u16)(size - 1);
    q->packed = (u8)packed;
    q->event_idx = (u8)event_idx;
    q->notify = notify;
    memset(phys_to_virt(desc), 0, vq_desc_bytes(packed, size));
    memset(phys_to_virt(driver), 0, vq_driver_bytes(packed, size));
    memset(phys_to_virt(device), 0, vq_device_bytes(packed, size));
    if (!packed) {
        q->desc = phys_to_virt(desc);
        q->avail = phys_to_virt(driver);
        q->used = phys_to_virt(device);
        q->used_event = &q->avail->ring[size];
        q->avail_event = (volatile u16 *)&q->used->ring[size];
        /* §2.7.7: polling, no used-buffer notifications (with EVENT_IDX, used_event does it: see vq_reap). */
        q->avail->flags = VRING_AVAIL_F_NO_INTERRUPT;
        *q->used_event = (u16)(0 - 1);
    } else {
        q->pdesc = phys_to_virt(desc);
        q->driver_evt = phys_to_virt(driver);
        q->device_evt = phys_to_virt(device);
        /* §2.8.10: the driver's event suppression structure: no used-buffer notifications. */
        q->driver_evt->flags = VRING_PACKED_EVENT_FLAG_DISABLE;
        /* §2.8.1: both wrap counters start at 1. */
        q->avail_wrap = 1;
        q->avail_flags = VRING_PACKED_DESC_F_AVAIL;
        q->used_wrap = 1;
    }
    for (u16 i = 0; i < size; i++)
        q->free_ids[i] = (u16)(size - 1 - i);
    q->nfree = size;
}

void vq_enable_interrupts(struct vq *q)
{
    if (!q->packed)
        q->avail->flags = 0;
    else
        q->driver_evt->flags = VRING_PACKED_EVENT_FLAG_ENABLE;
}
