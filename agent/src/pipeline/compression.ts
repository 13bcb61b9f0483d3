import { type Duplex, PassThrough } from 'node:stream';
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

export function compressor(algo: CompressAlgo, level?: number): Duplex {
  switch (algo) {
    case 'zstd':
      return execa('zstd', [`-${level ?? 3}`, '-T0', '-q', '-c'], {
        stdin: 'pipe',
        stdout: 'pipe',
        buffer: false,
      }).duplex();
    case 'gzip':
      return createGzip({ level: level ?? 6, chunkSize: 256 * 1024 });
    case 'none':
      return new PassThrough({ highWaterMark: 1024 * 1024 });
  }
}

export function decompressor(algo: CompressAlgo): Duplex {
  switch (algo) {
    case 'zstd':
      return execa('zstd', ['-d', '-q', '-c'], { stdin: 'pipe', stdout: 'pipe', buffer: false }).duplex();
    case 'gzip':
      return createGunzip({ chunkSize: 256 * 1024 });
    case 'none':
      return new PassThrough({ highWaterMark: 1024 * 1024 });
  }
}
