// Benchmark sides run in child processes of their own (a core and a heap
// each); a child takes its parameters as one JSON argument and prints its
// result as the last line of stdout.
import { spawn } from 'node:child_process';

/** `passFds` become the child's fds 3, 4, ... (e.g. an XSKMAP several children put their sockets into). */
export function runJsonChild<T>(script: string, params: object, what: string, passFds: readonly number[] = []): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, JSON.stringify(params)], { stdio: ['ignore', 'pipe', 'pipe', ...passFds] });
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`benchmark child (${what}) failed: ${err.trim() || `exit ${code}`}`));
      try {
        resolve(JSON.parse(out.trim().split('\n').pop() ?? '') as T);
      } catch (e) {
        reject(new Error(`benchmark child (${what}) printed no result: ${String(e)}`));
      }
    });
  });
}
