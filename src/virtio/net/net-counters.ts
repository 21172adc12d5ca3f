// What a queue pair counts: what crossed, and every frame or buffer the
// device refused and why (the guest can cause each of these).
export class NetQueueCounters {
  txFrames = 0;
  txBytes = 0;
  /** Chains shorter than the virtio-net header plus an Ethernet header. */
  txDropRunt = 0;
  /** Frames larger than the backend carries, and GSO frames when TSO was not negotiated. */
  txDropOversize = 0;
  /** GSO frames the TSO path cannot segment (not TCP over IPv4/IPv6, bad headers, gso_size 0 or too large, too many segments). */
  txDropUnsegmentable = 0;
  /** NEEDS_CSUM with a checksum position outside the frame. */
  txDropBadCsum = 0;
  /** Frames (or TSO segments) larger than the negotiated MTU plus the Ethernet header (and VLAN tag), §5.1.4.2. */
  txDropOverMtu = 0;
  /** Times the backend had no room and the device waited. */
  txBackpressure = 0;
  /** TSO frames cut into wire-size segments. */
  txSegmented = 0;
  rxFrames = 0;
  rxBytes = 0;
  /** Frames left in the backend because the guest had no receive buffers. */
  rxNoBuffers = 0;
  /** Frames dropped because the most buffers a frame may take could not hold them (one without MRG_RXBUF, 64 with it). */
  rxDropTooSmall = 0;
  /** Received frames larger than the negotiated MTU plus the Ethernet header (and VLAN tag), not passed on (§5.1.4.1). */
  rxDropOverMtu = 0;
  /** Used-buffer notifications sent to the guest. */
  interrupts = 0;
}
