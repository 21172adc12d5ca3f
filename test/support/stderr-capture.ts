// Runs a synchronous step with process.stderr captured: the one-line
// messages a backend prints at open are part of what tests check.

/** The step's value and the non-empty lines it wrote to stderr (nothing reaches the terminal). */
export function stderrOf<T>(fn: () => T): { value: T; lines: string[] } {
  const lines: string[] = [];
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string | Uint8Array): boolean => {
    lines.push(...String(chunk).split('\n').filter((l) => l !== ''));
    return true;
  }) as typeof process.stderr.write;
  try {
    return { value: fn(), lines };
  } finally {
    process.stderr.write = write;
  }
}
