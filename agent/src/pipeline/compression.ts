import { spawn } from 'node:child_process';
import { Duplex, PassThrough } from 'node:stream';
import { createGunzip, createGzip } from 'node:zlib';
import type { CompressAlgo } from '@dbbackup/proto';
import { execa } from 'execa';

let zstdAvailable: boolean | undefined;

/** Whether the system `zstd` binary is here (Node 20's zlib has no zstd). */
export async function hasZstd(): Promise<boolean> {
  if (zstdAvailable === undefined) {
    const r = await execa('zstd', ['--version'], { reject: false, timeout: 5000 });
    zstdAvailable = r.exitCode === 0;
  }
  return zstdAvailable;
}

export const COMPRESS_EXT: Record<CompressAlgo, string> = { zstd: '.zst', gzip: '.gz', none: '' };

/**
 * A child process as a Duplex: bytes in through its stdin, out through its
 * stdout; a non-zero exit or a signal fails the stream with the tool's stderr.
 * Arguments are an array; nothing goes through a shell.
 */
function toolDuplex(cmd: string, args: string[]): Duplex {
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => {
    if (stderr.length < 4096) stderr += c.toString();
  });
  const d = Duplex.from({ writable: child.stdin, readable: child.stdout });
  child.on('error', (err) => d.destroy(err));
  child.on('close', (code, signal) => {
    if (code !== 0 && !d.destroyed)
      d.destroy(new Error(`${cmd} failed (${signal ?? `exit ${code}`}): ${stderr.trim()}`));
  });
  d.on('close', () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  });
  return d;
}

export function compressor(algo: CompressAlgo, level?: number): Duplex {
  switch (algo) {
    case 'zstd':
      return toolDuplex('zstd', [`-${level ?? 3}`, '-T0', '-q', '-c']);
    case 'gzip':
      return createGzip({ level: level ?? 6, chunkSize: 256 * 1024 });
    case 'none':
      return new PassThrough({ highWaterMark: 1024 * 1024 });
  }
}

export function decompressor(algo: CompressAlgo): Duplex {
  switch (algo) {
    case 'zstd':
      return toolDuplex('zstd', ['-d', '-q', '-c']);
    case 'gzip':
      return createGunzip({ chunkSize: 256 * 1024 });
    case 'none':
      return new PassThrough({ highWaterMark: 1024 * 1024 });
  }
}
