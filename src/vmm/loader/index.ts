// Loaders that put a guest into memory and give its vCPUs their entry state.
export * from './bare-metal-loader';
export * from './boot-info';
export * from './bare-metal-elf';
export * from './exception-stubs';
export * from './gdt';
export * from './host-tsc';
export * from './page-tables';
export * from './system-block-snapshot';
