import type { ChildProcess } from 'node:child_process';
import { PassThrough, type Readable } from 'node:stream';

/**
 * A child's stdout that keeps its bytes until someone reads them. Node resumes
 * (and so discards) a child's stdio stream that has no reader when the child
 * exits; a small dump tool can finish before the job's pipeline is assembled.
 * Piping at once keeps backpressure and the data.
 */
export function retained(out: Readable | null): Readable | null {
  if (!out) return null;
  const keep = new PassThrough({ highWaterMark: 1024 * 1024 });
  out.on('error', (err) => keep.destroy(err));
  return out.pipe(keep);
}

export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The tail of what the process wrote to stderr, for error messages. */
  stderr: string;
}

/** Wait for a child process to exit, keeping the tail of its stderr. Rejects only if it could not run. */
export function childExit(child: ChildProcess, keepBytes = 16_384): Promise<ChildExit> {
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => {
    stderr = (stderr + c.toString()).slice(-keepBytes);
  });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal, stderr }));
  });
}

/** Resolves when the child exits 0; otherwise rejects naming it, its exit status and its stderr (with `signal`). */
export async function childSuccess(child: ChildProcess, name: string, keepBytes = 4096): Promise<void> {
  const { code, signal, stderr } = await childExit(child, keepBytes);
  if (code !== 0) {
    throw Object.assign(new Error(`${name} failed (${signal ?? `exit ${code}`}): ${stderr.trim()}`), {
      signal,
    });
  }
}
