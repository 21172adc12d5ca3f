// KVM for the VMM: one concept per module (system, VM, vCPU, register and
// CPUID encodings, guest RAM, eventfd, epoll, PVM policy).
export * from './kvm';
export * from './vm';
export * from './vcpu';
export * from './cpuid';
export * from './regs';
export * from './msr';
export * from './lapic';
export * from './memory';
export * from './eventfd';
export * from './epoll';
export * from './pvm';
