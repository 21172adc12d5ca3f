#ifndef PMD_VIRTIO_NET_H
#define PMD_VIRTIO_NET_H

#include "pci.h"
#include "virtqueue.h"

struct vnet {
    struct virtio_pci_dev pci;
    u64 offered;     /* device_feature */
    u64 features;    /* negotiated */
    u8 mac[6];
    u16 link_status; /* config status, when VIRTIO_NET_F_STATUS */
    u16 max_pairs;   /* max_virtqueue_pairs (1 without MQ) */
    u16 num_queues;  /* common config num_queues */
    struct vq ctrl;
    u64 ctrl_buf;    /* guest-physical: class, command, data at +0; ack at +64 */
};

struct vnet_wants {
    u16 pairs;     /* queue pairs to use */
    int packed;    /* insist on VIRTIO_F_RING_PACKED */
    int event_idx; /* take VIRTIO_F_EVENT_IDX when offered */
};

/* Guest memory for rings and buffers (main.c: a bump allocator over the boot-info free range); guest-physical. */
u64 mem_alloc(u64 size, u64 align);

/* §3.1.1 steps 1-6: reset, ACKNOWLEDGE, DRIVER, feature negotiation, FEATURES_OK, device config. */
void vnet_negotiate(struct vnet *n, const struct vnet_wants *w);
/* §4.1.5.1.3: sets up and enables virtqueue `index` with at most `size` entries and MSI-X entry `msix` (VIRTIO_MSI_NO_VECTOR: polled). */
void vnet_setup_queue(struct vnet *n, struct vq *q, u16 index, u16 size, u16 msix);
/* Sets up the control queue when VIRTIO_NET_F_CTRL_VQ was negotiated. */
void vnet_setup_ctrl(struct vnet *n);
/* §3.1.1 step 8: DRIVER_OK. */
void vnet_driver_ok(struct vnet *n);
/* §5.1.6.5.5: VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET. */
void vnet_set_pairs(struct vnet *n, u16 pairs);

#endif
