// PCI 3.0 §6.7: the capability list. Capabilities are placed one after
// another from 0x40, DWORD aligned, linked through their next pointers from
// the capabilities pointer at 0x34; adding the first one sets the status
// register's Capabilities List bit.
import type { AccessSize } from './access';
import type { PciConfigSpace } from './config-space';
import { PCI_CAPABILITIES_START, PciHeader, PciStatus } from './config-header';

/** Side effects of a capability's registers; offsets are relative to the capability. */
export interface PciCapabilityHooks {
  /** Before a guest read of [offset, offset + size): refresh those bytes if they are live. */
  beforeRead?(offset: number, size: AccessSize): void;
  /** After a guest write has been stored through the write masks. */
  afterWrite?(offset: number, size: AccessSize): void;
}

export interface PciCapability {
  readonly id: number;
  readonly offset: number;
  readonly length: number;
  readonly hooks: PciCapabilityHooks;
}

export class PciCapabilityList {
  private readonly caps: PciCapability[] = [];
  private nextFree = PCI_CAPABILITIES_START;

  constructor(private readonly space: PciConfigSpace) {}

  /**
   * Appends a capability of `length` bytes (including its id and next
   * bytes) and returns its offset in configuration space. The caller fills
   * in the body and sets write masks for its writable fields.
   */
  add(id: number, length: number, hooks: PciCapabilityHooks = {}): number {
    if (!Number.isInteger(length) || length < 2) throw new Error(`PCI capability 0x${id.toString(16)}: length ${length} < 2`);
    const offset = this.nextFree;
    if (offset + length > this.space.size) {
      throw new Error(`PCI capability 0x${id.toString(16)}: no room in configuration space (needs ${length} bytes at 0x${offset.toString(16)})`);
    }
    this.space.set8(offset, id);
    this.space.set8(offset + 1, 0);
    const last = this.caps[this.caps.length - 1];
    if (last) {
      this.space.set8(last.offset + 1, offset);
    } else {
      this.space.set8(PciHeader.CAPABILITIES_POINTER, offset);
      this.space.set16(PciHeader.STATUS, this.space.get16(PciHeader.STATUS) | PciStatus.CAPABILITIES_LIST);
    }
    this.caps.push({ id, offset, length, hooks });
    this.nextFree = (offset + length + 3) & ~3;
    return offset;
  }

  /** The capability holding configuration byte `offset`, if any. */
  find(offset: number): PciCapability | undefined {
    for (const cap of this.caps) if (offset >= cap.offset && offset < cap.offset + cap.length) return cap;
    return undefined;
  }

  get all(): readonly PciCapability[] {
    return this.caps;
  }
}
