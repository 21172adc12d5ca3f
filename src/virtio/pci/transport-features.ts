// §6: which of the device's offered features the PCI transport can carry.
// Features that need transport support this transport does not implement
// are withheld from device_feature, so the driver never negotiates them.
import { VirtioFeature, featureMask, hasFeature } from 'virtio-spec-types';
import type { VirtioDevice } from '../device';

/**
 * Withheld always: NOTIFICATION_DATA and NOTIF_CONFIG_DATA (the device
 * interface carries no notification data), SR_IOV (no SR-IOV extended
 * capability) and ADMIN_VQ (the 1.2 common configuration has no admin
 * queue fields).
 */
const UNSUPPORTED = featureMask(
  VirtioFeature.NOTIFICATION_DATA,
  VirtioFeature.NOTIF_CONFIG_DATA,
  VirtioFeature.SR_IOV,
  VirtioFeature.ADMIN_VQ,
);
const RING_RESET = featureMask(VirtioFeature.RING_RESET);

/** The features presented in device_feature for `device`; throws if the device is not a virtio 1.x device. */
export function pciOfferedFeatures(device: VirtioDevice): bigint {
  if (!hasFeature(device.deviceFeatures, VirtioFeature.VERSION_1)) {
    throw new Error(`virtio device ${device.deviceId}: deviceFeatures lacks VIRTIO_F_VERSION_1 (the PCI transport is modern-only)`);
  }
  let offer = device.deviceFeatures & ~UNSUPPORTED;
  // §2.6.1: queue reset needs the device's help.
  if (!device.resetQueue || !device.enableQueue) offer &= ~RING_RESET;
  return offer;
}
