// Running the Debian tools the image builder leans on (apt-get, apt-cache,
// dpkg-deb, zstd): one place that turns a failed command into an error that
// names the command and carries its stderr.
import { execFile, spawn } from 'node:child_process';

export class CommandError extends Error {
  constructor(
    readonly command: string,
    readonly status: number | string | null,
    readonly stderr: string,
  ) {
    const tail = stderr.trim().split('\n').slice(-8).join('\n');
    super(`${command} failed (${typeof status === 'number' ? `exit ${status}` : status ?? 'unknown'})${tail ? `:\n${tail}` : ''}`);
    this.name = 'CommandError';
  }
}

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Bytes of stdout kept in memory (default 64 MiB). */
  maxBuffer?: number;
}

/** Runs `cmd args...` to completion and resolves with its stdout (text). Rejects with CommandError on failure. */
export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<string> {
  const shown = [cmd, ...args].join(' ');
  return new Promise((resolve, reject) => {
    execFile(
      cmd,
      args,
      {
        cwd: opts.cwd,
        env: opts.env ?? process.env,
        maxBuffer: opts.maxBuffer ?? 64 << 20,
        encoding: 'utf8',
      },
      (err, stdout, stderr) => {
        if (err) {
          const code = (err as NodeJS.ErrnoException).code;
          const status = typeof code === 'number' ? code : code === 'ENOENT' ? `${cmd}: command not found` : (err as { signal?: string }).signal ?? String(code);
          reject(new CommandError(shown.length > 200 ? `${shown.slice(0, 200)}...` : shown, status, stderr || err.message));
        } else resolve(stdout);
      },
    );
  });
}

/**
 * Runs `cmd args...` with stdin fed by `feed` (which writes to the stream it is given and resolves when done)
 * and stdout going to the file descriptor `outFd`. Used for compressing the initramfs on the fly.
 */
export function runPipe(
  cmd: string,
  args: readonly string[],
  outFd: number,
  feed: (stdin: NodeJS.WritableStream) => Promise<void>,
): Promise<void> {
  const shown = [cmd, ...args].join(' ');
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', outFd, 'pipe'] });
    const { stdin, stderr: errStream } = child;
    if (!stdin || !errStream) throw new Error(`${cmd}: no pipes`);
    let stderr = '';
    let failed = false;
    errStream.setEncoding('utf8');
    errStream.on('data', (d: string) => {
      stderr += d;
    });
    child.on('error', (e) => {
      failed = true;
      reject(new CommandError(shown, (e as NodeJS.ErrnoException).code ?? 'spawn error', e.message));
    });
    child.on('close', (code, signal) => {
      if (failed) return;
      if (code === 0) resolve();
      else reject(new CommandError(shown, code ?? signal, stderr));
    });
    feed(stdin).then(
      () => stdin.end(),
      (e: unknown) => {
        failed = true;
        child.kill();
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}

/** Like run(), but stdout comes back as bytes. */
export function runBytes(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<Buffer> {
  const shown = [cmd, ...args].join(' ');
  return new Promise((resolve, reject) => {
    execFile(
      cmd,
      args,
      { cwd: opts.cwd, env: opts.env ?? process.env, maxBuffer: opts.maxBuffer ?? 256 << 20, encoding: 'buffer' },
      (err, stdout, stderr) => {
        if (err) {
          const code = (err as NodeJS.ErrnoException).code;
          reject(new CommandError(shown, typeof code === 'number' ? code : String(code), stderr.toString('utf8') || err.message));
        } else resolve(stdout);
      },
    );
  });
}
