// Whether this kernel hands free memory back to a hypervisor: a virtio
// balloon that negotiated VIRTIO_BALLOON_F_REPORTING (virtio 1.2 §5.5.3,
// feature bit 5). Linux then reports free blocks of 2 MiB (the default
// page_reporting_order) and the hypervisor drops their backing, so memory
// taken from such a block faults in from the hypervisor again. Transparent
// huge pages come exactly from those blocks: on a PVM host, 16 MiB populated
// as THP took 35-80 ms a second or more after it was last freed, as 4 KiB
// pages 6-11 ms. Allocations on the boot path pick their page size by this.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import path from 'node:path';

const VIRTIO_ID_BALLOON = 5;
const VIRTIO_BALLOON_F_REPORTING = 5;

/** One virtio device as sysfs shows it: its device id, its negotiated features ('0'/'1' per bit, bit 0 first) and driver. */
export interface VirtioSysfsDevice {
  device: number;
  features: string;
  driver: string | undefined;
}

export function reportsFreePages(devices: readonly VirtioSysfsDevice[]): boolean {
  return devices.some((d) => d.device === VIRTIO_ID_BALLOON && d.driver === 'virtio_balloon' && d.features[VIRTIO_BALLOON_F_REPORTING] === '1');
}

const VIRTIO_DEVICES = '/sys/bus/virtio/devices';

export function virtioSysfsDevices(root = VIRTIO_DEVICES): VirtioSysfsDevice[] {
  let names: string[];
  try {
    names = readdirSync(root);
  } catch {
    return []; // no virtio bus: not a virtio guest
  }
  const out: VirtioSysfsDevice[] = [];
  for (const n of names) {
    const dir = path.join(root, n);
    try {
      const device = Number(readFileSync(path.join(dir, 'device'), 'utf8').trim());
      const features = readFileSync(path.join(dir, 'features'), 'utf8').trim();
      let driver: string | undefined;
      try {
        driver = path.basename(readlinkSync(path.join(dir, 'driver')));
      } catch {
        driver = undefined; // no driver bound
      }
      out.push({ device, features, driver });
    } catch {
      // a device going away while we read it
    }
  }
  return out;
}

let cached: boolean | undefined;

/** The page size for a populated private mapping on the boot path (a UMEM): THP unless free blocks go to a hypervisor. */
export function bootMappingPages(): 'base' | 'thp' {
  cached ??= reportsFreePages(virtioSysfsDevices());
  return cached ? 'base' : 'thp';
}
