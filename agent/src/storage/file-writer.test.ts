import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { FileWriter } from './file-writer.js';

const dir = mkdtempSync(path.join(tmpdir(), 'dbb-fw-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A real handle whose datasync calls are counted, and whose writev may write only part of what it is given. */
async function handle(file: string, opts: { short?: boolean } = {}) {
  const fh = await open(file, 'wx', 0o600);
  const seen = { datasync: 0, writev: 0 };
  const wrapped = new Proxy(fh, {
    get(t, prop) {
      if (prop === 'datasync')
        return () => {
          seen.datasync++;
          return t.datasync();
        };
      if (prop === 'writev')
        return (bufs: Buffer[]) => {
          seen.writev++;
          // A short write: only the first buffer, cut in half when it can be.
          if (opts.short && (bufs.length > 1 || bufs[0]!.length > 1))
            return t.writev(bufs.length > 1 ? [bufs[0]!] : [bufs[0]!.subarray(0, bufs[0]!.length >> 1)]);
          return t.writev(bufs);
        };
      const v = Reflect.get(t, prop);
      return typeof v === 'function' ? v.bind(t) : v;
    },
  }) as FileHandle;
  return { fh: wrapped, seen };
}

describe('FileWriter', () => {
  it('writes every byte in order, batching chunks into few writes and flushing in the background', async () => {
    const chunks = Array.from({ length: 400 }, (_, i) => randomBytes(1000 + i * 37));
    const file = path.join(dir, 'a');
    const { fh, seen } = await handle(file);
    const w = new FileWriter(fh, 1024 * 1024);
    await pipeline(Readable.from(chunks), w);
    await w.sync();
    const want = Buffer.concat(chunks);
    expect(readFileSync(file).equals(want)).toBe(true);
    expect(w.bytesWritten).toBe(want.length);
    expect(seen.writev).toBeLessThan(chunks.length);
    expect(seen.datasync).toBeGreaterThanOrEqual(1);
  });

  it('finishes what a short write left', async () => {
    const chunks = Array.from({ length: 50 }, () => randomBytes(5000));
    const file = path.join(dir, 'b');
    const { fh } = await handle(file, { short: true });
    const w = new FileWriter(fh, 0);
    await pipeline(Readable.from(chunks), w);
    await w.sync();
    expect(readFileSync(file).equals(Buffer.concat(chunks))).toBe(true);
  });

  it('closes its handle when destroyed mid-stream, and a second close is harmless', async () => {
    const file = path.join(dir, 'c');
    const { fh } = await handle(file);
    const w = new FileWriter(fh);
    w.on('error', () => {});
    w.write(randomBytes(10));
    w.destroy(new Error('stop'));
    await new Promise((r) => w.once('close', r));
    await w.close();
    await expect(fh.stat()).rejects.toThrow();
  });
});
