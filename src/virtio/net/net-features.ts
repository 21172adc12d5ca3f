// The virtio-net feature policy (§5.1.3), shared by the device model (which
// owns the whole device: configuration, control queue) and the vhost-user
// back end (whose front end owns the configuration and the control queue):
// what is offered, which combinations a driver may not ask for, and what the
// queue pairs do with the negotiated bits.
import { featureMask, hasFeature, NetFeature, VirtioFeature } from 'virtio-spec-types';
import type { TxOffloads } from './tx-path';

export interface NetFeatureOffer {
  /** Queue pairs: MQ when more than one. */
  pairs: number;
  /** Software checksum and TSO in the TX path: CSUM and HOST_TSO4/6. */
  offloads: boolean;
  /** Packed rings. */
  packed: boolean;
  /**
   * The configuration space and the control queue are ours (MAC, STATUS, MTU,
   * SPEED_DUPLEX, CTRL_VQ and the control commands); false where the front end
   * owns them (vhost-user).
   */
  control: boolean;
}

/** The feature bits offered for `o`. */
export function offeredNetFeatures(o: NetFeatureOffer): bigint {
  const bits: number[] = [VirtioFeature.VERSION_1, VirtioFeature.INDIRECT_DESC, VirtioFeature.EVENT_IDX, NetFeature.MRG_RXBUF];
  if (o.control) {
    bits.push(
      NetFeature.MAC, NetFeature.STATUS, NetFeature.MTU, NetFeature.SPEED_DUPLEX,
      NetFeature.CTRL_VQ, NetFeature.CTRL_RX, NetFeature.CTRL_MAC_ADDR, NetFeature.GUEST_ANNOUNCE,
    );
  }
  if (o.packed) bits.push(VirtioFeature.RING_PACKED);
  if (o.pairs > 1) bits.push(NetFeature.MQ);
  // AF_XDP has no offloads: the TX path completes checksums and segments TSO frames in software.
  if (o.offloads) bits.push(NetFeature.CSUM, NetFeature.HOST_TSO4, NetFeature.HOST_TSO6);
  return featureMask(...bits);
}

/**
 * Why `features` break a §5.1.3.1 dependency, or undefined. With `control`
 * (the control queue is ours) the control commands and MQ need CTRL_VQ too.
 */
export function netFeatureDependencyError(features: bigint, control: boolean): string | undefined {
  const has = (bit: number): boolean => hasFeature(features, bit);
  if ((has(NetFeature.HOST_TSO4) || has(NetFeature.HOST_TSO6)) && !has(NetFeature.CSUM)) return 'HOST_TSO4/6 need CSUM (§5.1.3.1)';
  if (control) {
    for (const [bit, name] of [[NetFeature.CTRL_RX, 'CTRL_RX'], [NetFeature.MQ, 'MQ'], [NetFeature.CTRL_MAC_ADDR, 'CTRL_MAC_ADDR'], [NetFeature.GUEST_ANNOUNCE, 'GUEST_ANNOUNCE']] as const)
      if (has(bit) && !has(NetFeature.CTRL_VQ)) return `${name} needs CTRL_VQ (§5.1.3.1)`;
  }
  return undefined;
}

/** What a queue pair does with the negotiated bits: mergeable RX buffers, TX offloads. */
export function pairFeatures(features: bigint): { mergeable: boolean; offloads: TxOffloads } {
  const has = (bit: number): boolean => hasFeature(features, bit);
  return {
    mergeable: has(NetFeature.MRG_RXBUF),
    offloads: { csum: has(NetFeature.CSUM), tso: has(NetFeature.HOST_TSO4) || has(NetFeature.HOST_TSO6) },
  };
}
