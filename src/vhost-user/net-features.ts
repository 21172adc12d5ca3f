// What the vhost-user virtio-net back end offers: the data-path feature
// bits (the front end, e.g. QEMU, owns the control queue, MAC and link
// status and combines its own bits with these), the protocol features, and
// the device configuration space for GET_CONFIG.
import { featureMask, hasFeature, NetFeature, VirtioFeature } from 'virtio-spec-types';
import { NetConfigSpace } from '../virtio/net/net-config-space';
import type { QueueConfig } from '../virtio/device';
import type { QueuePairSpec, RingResume } from '../virtio/net/queue-pair-runner';
import { ProtocolFeature, VHOST_USER_F_PROTOCOL_FEATURES } from './protocol';

export interface NetBackendShape {
  pairs: number;
  mac: Uint8Array;
  mtu: number;
  /** Software checksum / TSO in the TX path (default on): offer CSUM and HOST_TSO4/6. */
  offloads: boolean;
}

/** Virtio features offered in GET_FEATURES. Split rings only: RING_PACKED is not offered. */
export function offeredFeatures(shape: NetBackendShape): bigint {
  const bits: number[] = [
    VirtioFeature.VERSION_1,
    VirtioFeature.INDIRECT_DESC,
    VirtioFeature.EVENT_IDX,
    NetFeature.MRG_RXBUF,
    VHOST_USER_F_PROTOCOL_FEATURES,
  ];
  if (shape.pairs > 1) bits.push(NetFeature.MQ);
  // AF_XDP has no offloads: the TX path completes checksums and segments TSO frames in software.
  if (shape.offloads) bits.push(NetFeature.CSUM, NetFeature.HOST_TSO4, NetFeature.HOST_TSO6);
  return featureMask(...bits);
}

/**
 * Protocol features offered in GET_PROTOCOL_FEATURES. CONFIG only on
 * request: QEMU's vhost-user-net has no use for it (it owns the virtio-net
 * configuration) and warns when a back end offers it.
 */
export function offeredProtocolFeatures(config: boolean): bigint {
  const bits: number[] = [ProtocolFeature.MQ, ProtocolFeature.REPLY_ACK, ProtocolFeature.RESET_DEVICE];
  if (config) bits.push(ProtocolFeature.CONFIG);
  return featureMask(...bits);
}

/** Why a SET_FEATURES value cannot be used, or undefined when it can. */
export function refuseFeatures(features: bigint, offered: bigint): string | undefined {
  const extra = features & ~offered;
  if (extra !== 0n) return `features 0x${extra.toString(16)} were not offered`;
  // The TX/RX paths use the 12-byte virtio 1.x header (§5.1.6) and little-endian rings.
  if (!hasFeature(features, VirtioFeature.VERSION_1)) return 'VIRTIO_F_VERSION_1 is required (legacy devices are not supported)';
  if ((hasFeature(features, NetFeature.HOST_TSO4) || hasFeature(features, NetFeature.HOST_TSO6)) && !hasFeature(features, NetFeature.CSUM))
    return 'HOST_TSO4/6 need CSUM (§5.1.3.1)';
  return undefined;
}

export function netConfigSpace(shape: NetBackendShape): NetConfigSpace {
  return new NetConfigSpace(shape.mac, shape.pairs, shape.mtu, 10000);
}

/** The spec of pair `pair` for an I/O worker, from rings already translated to guest-physical addresses. */
export function pairSpec(pair: number, rx: QueueConfig, tx: QueueConfig, features: bigint, rxResume: RingResume, txResume: RingResume): QueuePairSpec {
  return {
    pair,
    rx,
    tx,
    features,
    mergeable: hasFeature(features, NetFeature.MRG_RXBUF),
    offloads: {
      csum: hasFeature(features, NetFeature.CSUM),
      tso: hasFeature(features, NetFeature.HOST_TSO4) || hasFeature(features, NetFeature.HOST_TSO6),
    },
    rxResume,
    txResume,
  };
}
