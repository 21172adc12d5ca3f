#ifndef PMD_PCI_H
#define PMD_PCI_H

#include "pmd.h"

struct virtio_region {
    u64 addr; /* guest-physical (= virtual: identity mapped) */
    u32 len;
    u8 bar;
};

struct virtio_pci_dev {
    u8 dev, fn;
    struct virtio_region common, notify, isr, device;
    u32 notify_mult; /* notify_off_multiplier (§4.1.4.4) */
    u8 msix_cap;     /* config offset of the MSI-X capability, 0 if none */
    u16 msix_size;   /* table entries */
    u64 msix_table;  /* guest-physical address of the table */
};

u32 pci_read32(u8 dev, u8 fn, u8 reg);
u16 pci_read16(u8 dev, u8 fn, u8 reg);
u8 pci_read8(u8 dev, u8 fn, u8 reg);
void pci_write16(u8 dev, u8 fn, u8 reg, u16 v);
void pci_write32(u8 dev, u8 fn, u8 reg, u32 v);

/* Finds 1af4:1041 on bus 0, its virtio capabilities and BARs, enables memory + bus master. Fatal when absent. */
void pci_find_virtio_net(struct virtio_pci_dev *d, u64 mmio_base, u64 mmio_size);

/* Programs MSI-X table entry `entry` to deliver `vector` to local APIC 0 (fixed, edge) and enables MSI-X (PCI 3.0 §6.8.2). */
void pci_enable_msix(struct virtio_pci_dev *d, u16 entry, u8 vector);

#endif
