// `0x…` for error messages and reports.
export const hex = (n: number | bigint): string => `0x${n.toString(16)}`;
