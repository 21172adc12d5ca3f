// vhost-user protocol constants (QEMU docs/interop/vhost-user.rst, "Message
// Specification", "Protocol features", "Front-end message types").
// All numbers are in the machine's byte order (little-endian here).

/** Header: request u32, flags u32, size u32. */
export const HEADER_SIZE = 12;

/**
 * Largest payload accepted. The largest message this back end handles is
 * SET_MEM_TABLE with 8 regions (8 + 8 * 32 = 264 bytes) or GET/SET_CONFIG
 * (12 + 256); anything far beyond that is a broken or hostile front end.
 */
export const MAX_PAYLOAD = 4096;

/** Most fds one message carries: SET_MEM_TABLE, one per region (VHOST_MEMORY_BASELINE_NREGIONS). */
export const MAX_FDS = 8;
export const MAX_MEM_REGIONS = 8;

export const enum HeaderFlags {
  VersionMask = 0x3,
  Version = 0x1,
  Reply = 0x4,
  NeedReply = 0x8,
}

export const enum Request {
  GET_FEATURES = 1,
  SET_FEATURES = 2,
  SET_OWNER = 3,
  RESET_OWNER = 4,
  SET_MEM_TABLE = 5,
  SET_LOG_BASE = 6,
  SET_LOG_FD = 7,
  SET_VRING_NUM = 8,
  SET_VRING_ADDR = 9,
  SET_VRING_BASE = 10,
  GET_VRING_BASE = 11,
  SET_VRING_KICK = 12,
  SET_VRING_CALL = 13,
  SET_VRING_ERR = 14,
  GET_PROTOCOL_FEATURES = 15,
  SET_PROTOCOL_FEATURES = 16,
  GET_QUEUE_NUM = 17,
  SET_VRING_ENABLE = 18,
  SEND_RARP = 19,
  NET_SET_MTU = 20,
  SET_SLAVE_REQ_FD = 21,
  IOTLB_MSG = 22,
  SET_VRING_ENDIAN = 23,
  GET_CONFIG = 24,
  SET_CONFIG = 25,
  POSTCOPY_ADVISE = 28,
  POSTCOPY_LISTEN = 29,
  POSTCOPY_END = 30,
  GET_INFLIGHT_FD = 31,
  SET_INFLIGHT_FD = 32,
  RESET_DEVICE = 34,
  VRING_KICK = 35,
  GET_MAX_MEM_SLOTS = 36,
  ADD_MEM_REG = 37,
  REM_MEM_REG = 38,
  SET_STATUS = 39,
  GET_STATUS = 40,
}

const NAMES: Record<number, string> = {
  1: 'GET_FEATURES', 2: 'SET_FEATURES', 3: 'SET_OWNER', 4: 'RESET_OWNER', 5: 'SET_MEM_TABLE', 6: 'SET_LOG_BASE',
  7: 'SET_LOG_FD', 8: 'SET_VRING_NUM', 9: 'SET_VRING_ADDR', 10: 'SET_VRING_BASE', 11: 'GET_VRING_BASE',
  12: 'SET_VRING_KICK', 13: 'SET_VRING_CALL', 14: 'SET_VRING_ERR', 15: 'GET_PROTOCOL_FEATURES',
  16: 'SET_PROTOCOL_FEATURES', 17: 'GET_QUEUE_NUM', 18: 'SET_VRING_ENABLE', 19: 'SEND_RARP', 20: 'NET_SET_MTU',
  21: 'SET_SLAVE_REQ_FD', 22: 'IOTLB_MSG', 23: 'SET_VRING_ENDIAN', 24: 'GET_CONFIG', 25: 'SET_CONFIG', 28: 'POSTCOPY_ADVISE', 29: 'POSTCOPY_LISTEN', 30: 'POSTCOPY_END',
  31: 'GET_INFLIGHT_FD', 32: 'SET_INFLIGHT_FD', 34: 'RESET_DEVICE', 35: 'VRING_KICK', 36: 'GET_MAX_MEM_SLOTS',
  37: 'ADD_MEM_REG', 38: 'REM_MEM_REG', 39: 'SET_STATUS', 40: 'GET_STATUS',
};

export function requestName(r: number): string {
  return NAMES[r] ?? `request ${r}`;
}

/** Feature bit 30: the back end speaks GET/SET_PROTOCOL_FEATURES ("Communication"). */
export const VHOST_USER_F_PROTOCOL_FEATURES = 30;
/** Feature bit 26 (VHOST_F_LOG_ALL): dirty logging for migration; not offered. */
export const VHOST_F_LOG_ALL = 26;

export const enum ProtocolFeature {
  MQ = 0,
  LOG_SHMFD = 1,
  RARP = 2,
  REPLY_ACK = 3,
  MTU = 4,
  SLAVE_REQ = 5,
  CROSS_ENDIAN = 6,
  CONFIG = 9,
  INFLIGHT_SHMFD = 12,
  RESET_DEVICE = 13,
  INBAND_NOTIFICATIONS = 14,
  CONFIGURE_MEM_SLOTS = 15,
  STATUS = 16,
}

/** SET_VRING_KICK/CALL/ERR payload: bits 0-7 the vring index, bit 8 "no fd" (poll instead). */
export const VRING_INDEX_MASK = 0xff;
export const VRING_NOFD = 0x100;

/** SET_VRING_ADDR flags bit 0 (VHOST_VRING_F_LOG): log_guest_addr is valid. */
export const VRING_F_LOG = 0x1;

/** Payload sizes. */
export const U64_SIZE = 8;
export const VRING_STATE_SIZE = 8;
export const VRING_ADDR_SIZE = 40;
export const MEM_TABLE_HEADER = 8;
export const MEM_REGION_SIZE = 32;
export const CONFIG_HEADER = 12;
/** VHOST_USER_MAX_CONFIG_SIZE in QEMU. */
export const MAX_CONFIG_SIZE = 256;
