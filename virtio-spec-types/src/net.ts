// virtio-net (virtio 1.2 §5.1): device ID, feature bits, configuration
// layout, packet header and control-queue protocol.

/** §5: virtio device ID of a network card. */
export const VIRTIO_ID_NET = 1;

/** §5.1.3: virtio-net feature bit numbers. */
export const NetFeature = {
  /** Device handles packets with partial checksum (offload on transmit). */
  CSUM: 0,
  /** Driver handles packets with partial checksum. */
  GUEST_CSUM: 1,
  /** Control channel offloads reconfiguration. */
  CTRL_GUEST_OFFLOADS: 2,
  /** Device reports its maximum MTU in `mtu`. */
  MTU: 3,
  /** Device has the MAC address given in `mac`. */
  MAC: 5,
  /** Legacy only: device handles packets with any GSO type. */
  GSO: 6,
  GUEST_TSO4: 7,
  GUEST_TSO6: 8,
  GUEST_ECN: 9,
  GUEST_UFO: 10,
  HOST_TSO4: 11,
  HOST_TSO6: 12,
  HOST_ECN: 13,
  HOST_UFO: 14,
  /** Driver can merge receive buffers (num_buffers is meaningful). */
  MRG_RXBUF: 15,
  /** Configuration `status` field is available. */
  STATUS: 16,
  /** Control virtqueue is available. */
  CTRL_VQ: 17,
  /** Control channel RX mode support. */
  CTRL_RX: 18,
  /** Control channel VLAN filtering. */
  CTRL_VLAN: 19,
  /** Control channel RX extra modes (ALLUNI, NOMULTI, NOUNI, NOBCAST). */
  CTRL_RX_EXTRA: 20,
  /** Driver can send gratuitous packets. */
  GUEST_ANNOUNCE: 21,
  /** Multiqueue with automatic receive steering. */
  MQ: 22,
  /** Set MAC address through the control channel. */
  CTRL_MAC_ADDR: 23,
  /** Legacy only: guest can merge receive segments (RSC) for IPv4 / IPv6. */
  GUEST_RSC4: 41,
  GUEST_RSC6: 42,
  /** Device statistics over the control queue (virtio 1.3). */
  DEVICE_STATS: 50,
  /** Tunnel-aware hash reporting / RSS (virtio 1.3+). */
  HASH_TUNNEL: 51,
  /** Per-virtqueue notification coalescing (virtio 1.3). */
  VQ_NOTF_COAL: 52,
  /** Device-wide notification coalescing. */
  NOTF_COAL: 53,
  GUEST_USO4: 54,
  GUEST_USO6: 55,
  HOST_USO: 56,
  /** Device reports a per-packet hash value and type. */
  HASH_REPORT: 57,
  /** Driver provides the exact hdr_len. */
  GUEST_HDRLEN: 59,
  /** Receive-side scaling. */
  RSS: 60,
  /** Device reports coalesced segments and duplicated ACKs (RSC). */
  RSC_EXT: 61,
  /** Device may act as a standby for a primary device with the same MAC. */
  STANDBY: 62,
  /** Device reports `speed` and `duplex`. */
  SPEED_DUPLEX: 63,
} as const;

export type NetFeatureBit = (typeof NetFeature)[keyof typeof NetFeature];

/** §5.1.4 `struct virtio_net_config`: byte offsets. */
export const NetConfig = {
  /** u8 mac[6], valid with NetFeature.MAC. */
  MAC: 0,
  MAC_SIZE: 6,
  /** le16 NetStatus bits, valid with NetFeature.STATUS. */
  STATUS: 6,
  /** le16, valid with MQ or RSS. */
  MAX_VIRTQUEUE_PAIRS: 8,
  /** le16, valid with NetFeature.MTU. */
  MTU: 10,
  /** le32 Mbit/s, valid with SPEED_DUPLEX. */
  SPEED: 12,
  /** u8 NetDuplex, valid with SPEED_DUPLEX. */
  DUPLEX: 16,
  /** u8, valid with RSS or HASH_REPORT. */
  RSS_MAX_KEY_SIZE: 17,
  /** le16, valid with RSS. */
  RSS_MAX_INDIRECTION_TABLE_LENGTH: 18,
  /** le32 NetHashType bits, valid with RSS or HASH_REPORT. */
  SUPPORTED_HASH_TYPES: 20,
  /** Bytes of the structure as of virtio 1.2. */
  SIZE: 24,
} as const;

/** §5.1.4: bits of the `status` configuration field. */
export const NetStatus = {
  LINK_UP: 1,
  ANNOUNCE: 2,
} as const;

/**
 * §5.1.4.1: bounds of `mtu` (valid with NetFeature.MTU): the device MUST set it between 68 and 65535 and SHOULD
 * set at least 1280; 1500 is Ethernet's (QEMU's default host_mtu). §5.1.4.1 / §5.1.4.2: a frame may carry the
 * "low level ethernet header" beyond it: 14 bytes, and 4 more for an 802.1Q tag (ethertype 0x8100).
 */
export const NetMtu = {
  MIN: 68,
  MAX: 65535,
  ETHERNET: 1500,
  ETH_HEADER: 14,
  VLAN_TAG: 4,
  ETHERTYPE_VLAN: 0x8100,
} as const;

/** §5.1.4: `speed` value when unknown. */
export const NET_SPEED_UNKNOWN = 0xffffffff;

/** §5.1.4: `duplex` values. */
export const NetDuplex = {
  HALF: 0x00,
  FULL: 0x01,
  UNKNOWN: 0xff,
} as const;

/** §5.1.4 / §5.1.6.5.5: bounds of `max_virtqueue_pairs` and VQ_PAIRS_SET. */
export const NetQueuePairs = {
  MIN: 1,
  MAX: 0x8000,
} as const;

/** §5.1.2: virtqueue index of receiveq of queue pair `pair` (0-based). */
export function netRxQueueIndex(pair: number): number {
  return 2 * pair;
}

/** §5.1.2: virtqueue index of transmitq of queue pair `pair` (0-based). */
export function netTxQueueIndex(pair: number): number {
  return 2 * pair + 1;
}

/** §5.1.2: the control queue follows the last queue pair (`maxPairs` is 1 without MQ/RSS). */
export function netCtrlQueueIndex(maxPairs: number): number {
  return 2 * maxPairs;
}

/** §5.1.6 `struct virtio_net_hdr` (v1 layout, 12 bytes, always with num_buffers). */
export const NetHdr = {
  /** u8 NetHdrFlags. */
  FLAGS: 0,
  /** u8 NetGsoType. */
  GSO_TYPE: 1,
  /** le16 length of the headers to copy into each segment. */
  HDR_LEN: 2,
  /** le16 maximum segment payload. */
  GSO_SIZE: 4,
  /** le16 where checksumming starts; with RSC_INFO: number of coalesced segments. */
  CSUM_START: 6,
  /** le16 where to store the checksum, from csum_start; with RSC_INFO: duplicated ACKs. */
  CSUM_OFFSET: 8,
  /** le16 number of merged receive buffers (MRG_RXBUF); 1 otherwise on receive. */
  NUM_BUFFERS: 10,
  /** Header size without hash reporting. */
  SIZE: 12,
  /** With HASH_REPORT: le32 hash_value, le16 hash_report, le16 padding_reserved. */
  HASH_VALUE: 12,
  HASH_REPORT: 16,
  PADDING_RESERVED: 18,
  /** Header size with HASH_REPORT negotiated. */
  SIZE_WITH_HASH: 20,
} as const;

/** §5.1.6: `flags` bits of the packet header. */
export const NetHdrFlags = {
  NEEDS_CSUM: 1,
  DATA_VALID: 2,
  RSC_INFO: 4,
} as const;

/** §5.1.6: `gso_type` values of the packet header. */
export const NetGsoType = {
  NONE: 0,
  TCPV4: 1,
  UDP: 3,
  TCPV6: 4,
  UDP_L4: 5,
  /** Flag bit combined with TCPV4/TCPV6. */
  ECN: 0x80,
} as const;

/** §5.1.6.4.3: hash type bits (supported_hash_types, RSS hash_types). */
export const NetHashType = {
  IPV4: 1 << 0,
  TCPV4: 1 << 1,
  UDPV4: 1 << 2,
  IPV6: 1 << 3,
  TCPV6: 1 << 4,
  UDPV6: 1 << 5,
  IP_EX: 1 << 6,
  TCP_EX: 1 << 7,
  UDP_EX: 1 << 8,
} as const;

/** §5.1.6.4.3: `hash_report` values in the packet header. */
export const NetHashReport = {
  NONE: 0,
  IPV4: 1,
  TCPV4: 2,
  UDPV4: 3,
  IPV6: 4,
  TCPV6: 5,
  UDPV6: 6,
  IPV6_EX: 7,
  TCPV6_EX: 8,
  UDPV6_EX: 9,
} as const;

// ------------------------------------------------------------ control queue

/**
 * §5.1.6.5 `struct virtio_net_ctrl { u8 class; u8 command; u8 data[]; u8 ack; }`:
 * the driver-readable part starts with class and command; the device writes
 * the one-byte ack into the device-writable part.
 */
export const NetCtrlHdr = {
  CLASS: 0,
  COMMAND: 1,
  SIZE: 2,
  ACK_SIZE: 1,
} as const;

/** §5.1.6.5: ack values. */
export const NetCtrlAck = {
  OK: 0,
  ERR: 1,
} as const;

/** §5.1.6.5: command classes. */
export const NetCtrlClass = {
  RX: 0,
  MAC: 1,
  VLAN: 2,
  ANNOUNCE: 3,
  MQ: 4,
  GUEST_OFFLOADS: 5,
  NOTF_COAL: 6,
  STATS: 8,
} as const;

/** §5.1.6.5.1: NetCtrlClass.RX commands; data is one u8 (0 off, 1 on). */
export const NetCtrlRx = {
  PROMISC: 0,
  ALLMULTI: 1,
  /** The rest need CTRL_RX_EXTRA. */
  ALLUNI: 2,
  NOMULTI: 3,
  NOUNI: 4,
  NOBCAST: 5,
} as const;

/** §5.1.6.5.2: NetCtrlClass.MAC commands. */
export const NetCtrlMac = {
  /** Two `struct virtio_net_ctrl_mac { le32 entries; u8 macs[entries][6]; }`: unicast, then multicast. */
  TABLE_SET: 0,
  /** u8 mac[6]; needs CTRL_MAC_ADDR. */
  ADDR_SET: 1,
} as const;

/** §5.1.6.5.3: NetCtrlClass.VLAN commands; data is le16 vid. */
export const NetCtrlVlan = {
  ADD: 0,
  DEL: 1,
} as const;

/** §5.1.6.5.4: NetCtrlClass.ANNOUNCE commands. */
export const NetCtrlAnnounce = {
  /** The driver acknowledges NetStatus.ANNOUNCE; the device clears it. */
  ACK: 0,
} as const;

/** §5.1.6.5.5: NetCtrlClass.MQ commands. */
export const NetCtrlMq = {
  /** data: `le16 virtqueue_pairs`, in NetQueuePairs.MIN..max_virtqueue_pairs. */
  VQ_PAIRS_SET: 0,
  /** data: struct virtio_net_rss_config; needs RSS. */
  RSS_CONFIG: 1,
  /** data: struct virtio_net_hash_config; needs HASH_REPORT. */
  HASH_CONFIG: 2,
  VQ_PAIRS_MIN: NetQueuePairs.MIN,
  VQ_PAIRS_MAX: NetQueuePairs.MAX,
} as const;

/** §5.1.6.5 (RSS): `struct virtio_net_rss_config` offsets (indirection_table has mask+1 le16 entries). */
export const NetRssConfig = {
  HASH_TYPES: 0,
  INDIRECTION_TABLE_MASK: 4,
  UNCLASSIFIED_QUEUE: 6,
  INDIRECTION_TABLE: 8,
} as const;

/** §5.1.6.5 (offloads state): NetCtrlClass.GUEST_OFFLOADS commands; data is le64 offload bits. */
export const NetCtrlGuestOffloads = {
  SET: 0,
} as const;

/** §5.1.6.5 (notification coalescing): NetCtrlClass.NOTF_COAL commands. */
export const NetCtrlNotfCoal = {
  /** data: le32 tx_max_packets, le32 tx_usecs. */
  TX_SET: 0,
  /** data: le32 rx_max_packets, le32 rx_usecs. */
  RX_SET: 1,
  /** Per-virtqueue (VQ_NOTF_COAL, virtio 1.3). */
  VQ_SET: 2,
  VQ_GET: 3,
} as const;
