// KVM for the VMM: one concept per module (system, VM, vCPU, register and
// CPUID encodings, guest RAM, PVM policy). eventfd and epoll are in src/host.
export * from './kvm';
export * from './vm';
export * from './vcpu';
export * from './cpuid';
export * from './regs';
export * from './msr';
export * from './lapic';
export * from './memory';
export * from './pvm';
