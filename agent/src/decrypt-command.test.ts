import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import type { BackupMeta } from '@dbbackup/proto';
import { exportJWK, generateKeyPair } from 'jose';
import { afterAll, describe, expect, it } from 'vitest';
import { decryptBackup } from './decrypt-command.js';
import { WRAP_ALG, wrapDataKey } from './pipeline/data-key.js';
import { EncryptStream } from './pipeline/segmented-gcm.js';

describe('dbbackup-agent decrypt (no control plane)', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'dbb-decrypt-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** A backup as an agent writes it (compression none), sealed under `sealKey`, its meta wrapping `dataKey`. */
  async function backup(name: string, dataKey: Buffer, sealKey: Buffer, plain: Buffer) {
    const { publicKey, privateKey } = await generateKeyPair(WRAP_ALG, { crv: 'X25519', extractable: true });
    const sealed = await buffer(Readable.from([plain]).pipe(new EncryptStream(sealKey, 4096)));
    const files = {
      key: path.join(dir, `${name}.kek.json`),
      meta: path.join(dir, `${name}.meta.json`),
      in: path.join(dir, `${name}.enc`),
      out: path.join(dir, `${name}.dump`),
    };
    writeFileSync(files.key, JSON.stringify({ privateJwk: await exportJWK(privateKey) }));
    writeFileSync(files.in, sealed);
    const meta: BackupMeta = {
      filename: `${name}.enc`,
      objectKey: `x/${name}.enc`,
      version: 1,
      backupId: name,
      targetId: 't',
      targetName: 't',
      agentId: 'a',
      dbType: 'postgresql',
      dbHost: 'h',
      dbPort: null,
      dbName: 'd',
      startTime: new Date().toISOString(),
      endTime: new Date().toISOString(),
      durationMs: 1,
      sizeBytes: sealed.length,
      dumpBytes: plain.length,
      sha256: createHash('sha256').update(sealed).digest('hex'),
      compressAlgo: 'none',
      encryptAlgo: 'aes-256-gcm-segmented-v1',
      segmentBytes: 4096,
      chunks: 3,
      status: 'completed',
      wrappedKey: await wrapDataKey(dataKey, await exportJWK(publicKey), 'kek1', {
        bid: 'b',
        aid: 'a',
        tid: 't',
      }),
      kekId: 'kek1',
      engineVersion: '15',
      toolVersion: '15',
      tables: [],
    };
    writeFileSync(files.meta, JSON.stringify(meta));
    return files;
  }
  const run = (f: Awaited<ReturnType<typeof backup>>, legacyZeroKey?: boolean) =>
    decryptBackup({ keyFile: f.key, metaFile: f.meta, inFile: f.in, out: f.out, legacyZeroKey });

  it('recovers a backup with the exported private key, and refuses the zero-key option for it', async () => {
    const key = randomBytes(32);
    const plain = randomBytes(10_000);
    const f = await backup('good', key, key, plain);
    await expect(run(f)).resolves.toMatchObject({ segments: 3 });
    expect(readFileSync(f.out).equals(plain)).toBe(true);
    await expect(run(f, true)).rejects.toThrow(/segment 0 failed authentication/);
  });

  it('names a backup sealed under the all-zero key, and opens it only when told to', async () => {
    const plain = randomBytes(9000);
    const f = await backup('legacy', randomBytes(32), Buffer.alloc(32), plain);
    await expect(run(f)).rejects.toThrow(/before 0\.1\.1.*--legacy-zero-key/);
    await expect(run(f, true)).resolves.toMatchObject({ segments: 3 });
    expect(readFileSync(f.out).equals(plain)).toBe(true);
  });
});
