/* Constants from the virtio 1.2 specification that the PMD driver uses. */
#ifndef PMD_VIRTIO_DEFS_H
#define PMD_VIRTIO_DEFS_H

#include <stdint.h>

/* §4.1.2: modern virtio-pci ids: vendor 0x1af4, device 0x1040 + virtio device id (1 = net). */
#define VIRTIO_PCI_VENDOR 0x1af4
#define VIRTIO_PCI_DEVICE_NET 0x1041

/* §4.1.4: virtio vendor-specific capability (PCI capability id 0x09) and its cfg_type. */
#define PCI_CAP_ID_VNDR 0x09
#define VIRTIO_PCI_CAP_COMMON_CFG 1
#define VIRTIO_PCI_CAP_NOTIFY_CFG 2
#define VIRTIO_PCI_CAP_ISR_CFG 3
#define VIRTIO_PCI_CAP_DEVICE_CFG 4
/* struct virtio_pci_cap field offsets */
#define VCAP_CFG_TYPE 3
#define VCAP_BAR 4
#define VCAP_OFFSET 8
#define VCAP_LENGTH 12
#define VCAP_NOTIFY_MULT 16 /* struct virtio_pci_notify_cap */

/* §4.1.4.3: struct virtio_pci_common_cfg offsets. */
#define VC_DEVICE_FEATURE_SELECT 0x00
#define VC_DEVICE_FEATURE 0x04
#define VC_DRIVER_FEATURE_SELECT 0x08
#define VC_DRIVER_FEATURE 0x0c
#define VC_CONFIG_MSIX_VECTOR 0x10
#define VC_NUM_QUEUES 0x12
#define VC_DEVICE_STATUS 0x14
#define VC_CONFIG_GENERATION 0x15
#define VC_QUEUE_SELECT 0x16
#define VC_QUEUE_SIZE 0x18
#define VC_QUEUE_MSIX_VECTOR 0x1a
#define VC_QUEUE_ENABLE 0x1c
#define VC_QUEUE_NOTIFY_OFF 0x1e
#define VC_QUEUE_DESC 0x20
#define VC_QUEUE_DRIVER 0x28
#define VC_QUEUE_DEVICE 0x30
#define VC_COMMON_MIN_LEN 0x38 /* up to queue_device: what a 1.0 driver needs */
#define VIRTIO_MSI_NO_VECTOR 0xffff

/* §2.1: device status bits. */
#define VS_ACKNOWLEDGE 1
#define VS_DRIVER 2
#define VS_DRIVER_OK 4
#define VS_FEATURES_OK 8
#define VS_DEVICE_NEEDS_RESET 64
#define VS_FAILED 128

/* §6 reserved feature bits and §5.1.3 virtio-net feature bits. */
#define VIRTIO_NET_F_MAC 5
#define VIRTIO_NET_F_STATUS 16
#define VIRTIO_NET_F_CTRL_VQ 17
#define VIRTIO_NET_F_MQ 22
#define VIRTIO_F_EVENT_IDX 29
#define VIRTIO_F_VERSION_1 32
#define VIRTIO_F_ACCESS_PLATFORM 33
#define VIRTIO_F_RING_PACKED 34
#define VIRTIO_F_ORDER_PLATFORM 36
#define FEAT(b) (1ull << (b))

/* §5.1.4: struct virtio_net_config offsets. */
#define VNET_CFG_MAC 0
#define VNET_CFG_STATUS 6
#define VNET_CFG_MAX_PAIRS 8
#define VIRTIO_NET_S_LINK_UP 1

/* §5.1.6: struct virtio_net_hdr is 12 bytes once VERSION_1 is negotiated (num_buffers included). */
#define VNET_HDR_LEN 12

/* §5.1.6.5: control virtqueue. */
#define VIRTIO_NET_CTRL_MQ 4
#define VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET 0
#define VIRTIO_NET_OK 0

/* §2.7.5 split descriptors, §2.7.6 / §2.7.8 avail and used rings. */
#define VRING_DESC_F_NEXT 1
#define VRING_DESC_F_WRITE 2
#define VRING_AVAIL_F_NO_INTERRUPT 1
#define VRING_USED_F_NO_NOTIFY 1

struct vring_desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};

struct vring_avail {
    uint16_t flags;
    uint16_t idx;
    uint16_t ring[]; /* then le16 used_event (EVENT_IDX) */
};

struct vring_used_elem {
    uint32_t id;
    uint32_t len;
};

struct vring_used {
    uint16_t flags;
    uint16_t idx;
    struct vring_used_elem ring[]; /* then le16 avail_event (EVENT_IDX) */
};

/* §2.8.1 / §2.8.10 packed ring: descriptor flags and event suppression. */
#define VRING_PACKED_DESC_F_AVAIL (1u << 7)
#define VRING_PACKED_DESC_F_USED (1u << 15)
#define VRING_PACKED_EVENT_FLAG_ENABLE 0
#define VRING_PACKED_EVENT_FLAG_DISABLE 1
#define VRING_PACKED_EVENT_FLAG_DESC 2
#define VRING_PACKED_EVENT_F_WRAP_CTR 15

struct vring_packed_desc {
    uint64_t addr;
    uint32_t len;
    uint16_t id;
    uint16_t flags;
};

struct vring_packed_event {
    uint16_t off_wrap;
    uint16_t flags;
};

/* §2.7.10: whether `event` lies in [old, new) modulo 2^16. */
static inline int vring_need_event(uint16_t event, uint16_t new_idx, uint16_t old)
{
    return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old);
}

#endif
