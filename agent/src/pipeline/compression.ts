import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Duplex, PassThrough, type Readable, type Writable } from 'node:stream';
import { createGunzip, createGzip } from 'node:zlib';
import type { CompressAlgo } from '@dbbackup/proto';
import { execa } from 'execa';
import { childSuccess, retained } from './child-exit.js';

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
  const d = Duplex.from({ writable: child.stdin, readable: retained(child.stdout)! });
  childSuccess(child, cmd).catch((err) => {
    if (!d.destroyed) d.destroy(err);
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

/**
 * A zstd compressor to be fed by another child process directly: spawned first,
 * its stdin (a pipe the agent only holds, never reads) is handed to the dump
 * tool as stdout. The agent reads only zstd's compressed output. How much zstd
 * has read comes from /proc/<pid>/io (Linux; 0 elsewhere).
 */
export function zstdCompressor(level = 3): {
  stdin: Writable;
  output: Readable;
  done: Promise<void>;
  bytesIn: () => number;
  kill: () => void;
} {
  const child = spawn('zstd', [`-${level}`, '-T0', '-q', '-c'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let read = 0;
  const sample = () => {
    read = procIo(child.pid)?.rchar ?? read;
    return read;
  };
  child.stdout.once('end', sample);
  child.stdin.on('error', () => {});
  const done = childSuccess(child, 'zstd');
  done.catch(() => {});
  return {
    stdin: child.stdin,
    output: retained(child.stdout)!,
    done,
    bytesIn: sample,
    kill: () => child.kill('SIGKILL'),
  };
}

/** Bytes a process has read and written, from /proc/<pid>/io (Linux; undefined elsewhere or once it is gone). */
export function procIo(pid: number | undefined): { rchar: number; wchar: number } | undefined {
  if (!pid) return undefined;
  try {
    const t = readFileSync(`/proc/${pid}/io`, 'utf8');
    return {
      rchar: Number(/rchar: (\d+)/.exec(t)?.[1] ?? 0),
      wchar: Number(/wchar: (\d+)/.exec(t)?.[1] ?? 0),
    };
  } catch {
    return undefined;
  }
}
