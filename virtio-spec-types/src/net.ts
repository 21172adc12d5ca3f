// Filled in as the device model grows.
export {};
