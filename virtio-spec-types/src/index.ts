// virtio 1.2 constants and struct layouts shared by the device model and its tests.
export * from './status';
export * from './features';
export * from './ring';
export * from './net';
export * from './pci';
