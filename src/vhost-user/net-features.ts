// What the vhost-user virtio-net back end offers: the data-path feature
// bits (the front end, e.g. QEMU, owns the control queue, MAC and link
// status and combines its own bits with these), the protocol features, and
// the device configuration space for GET_CONFIG.
import { featureMask, hasFeature, NetFeature, VirtioFeature } from 'virtio-spec-types';
import { NetConfigSpace } from '../virtio/net/net-config-space';
import { netFeatureDependencyError, offeredNetFeatures, pairFeatures } from '../virtio/net/net-features';
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

/**
 * Virtio features offered in GET_FEATURES. Split rings only: RING_PACKED is not offered. MTU although the front
 * end owns the configuration: QEMU passes it on only when the back end offers it (vhost-user-net's feature
 * list), and the data path enforces it with the value NET_SET_MTU brings.
 */
export function offeredFeatures(shape: NetBackendShape): bigint {
  return (
    offeredNetFeatures({ pairs: shape.pairs, offloads: shape.offloads, packed: false, control: false }) |
    featureMask(VHOST_USER_F_PROTOCOL_FEATURES, NetFeature.MTU)
  );
}

/**
 * Protocol features offered in GET_PROTOCOL_FEATURES. CONFIG only on
 * request: QEMU's vhost-user-net has no use for it (it owns the virtio-net
 * configuration) and warns when a back end offers it.
 */
export function offeredProtocolFeatures(config: boolean): bigint {
  // MTU: NET_SET_MTU, the front end's host_mtu (vhost-user.rst "VHOST_USER_PROTOCOL_F_NET_MTU").
  const bits: number[] = [ProtocolFeature.MQ, ProtocolFeature.REPLY_ACK, ProtocolFeature.RESET_DEVICE, ProtocolFeature.MTU];
  if (config) bits.push(ProtocolFeature.CONFIG);
  return featureMask(...bits);
}

/** Why a SET_FEATURES value cannot be used, or undefined when it can. */
export function refuseFeatures(features: bigint, offered: bigint): string | undefined {
  const extra = features & ~offered;
  if (extra !== 0n) return `features 0x${extra.toString(16)} were not offered`;
  // The TX/RX paths use the 12-byte virtio 1.x header (§5.1.6) and little-endian rings.
  if (!hasFeature(features, VirtioFeature.VERSION_1)) return 'VIRTIO_F_VERSION_1 is required (legacy devices are not supported)';
  // The front end owns the control queue: only the data-path dependencies are ours to check.
  return netFeatureDependencyError(features, false);
}

export function netConfigSpace(shape: NetBackendShape): NetConfigSpace {
  return new NetConfigSpace(shape.mac, shape.pairs, shape.mtu, 10000);
}

/**
 * The spec of pair `pair` for an I/O worker, from rings already translated to guest-physical addresses. `mtu`:
 * the front end's (NET_SET_MTU) or ours, enforced when the driver negotiated VIRTIO_NET_F_MTU.
 */
export function pairSpec(
  pair: number,
  rx: QueueConfig,
  tx: QueueConfig,
  features: bigint,
  rxResume: RingResume,
  txResume: RingResume,
  mtu: number,
): QueuePairSpec {
  return {
    pair,
    rx,
    tx,
    features,
    ...pairFeatures(features),
    ...(hasFeature(features, NetFeature.MTU) ? { mtu } : {}),
    rxResume,
    txResume,
  };
}
