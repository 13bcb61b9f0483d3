import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { type StorageSpec, type WalArchived, walKeyId, walObjectPath } from '@dbbackup/proto';
import { AgentError } from '../agent-error.js';
import { childSuccess } from '../pipeline/child-exit.js';
import { newDataKey, wrapDataKey } from '../pipeline/data-key.js';
import { DEFAULT_SEGMENT_BYTES, ENCRYPT_ALGO, EncryptStream } from '../pipeline/segmented-gcm.js';
import type { ObjectStore } from '../storage/object-store.js';

export interface WalUploadContext {
  agentId: string;
  targetId: string;
  targetName: string;
  naming: { env: string; agentName: string };
  kek: { kid: string; publicJwk: Record<string, string> };
  storage: StorageSpec;
  store: ObjectStore;
  systemIdentifier: string;
  segmentBytes: number;
}

/**
 * One completed WAL file from the spool into storage: zstd reads the file, the agent
 * encrypts it under a data key of its own (wrapped to the key-encryption key and bound
 * to this file, this agent and this target), hashes and uploads it; its `.meta.json`
 * follows once the data is stored and its size confirmed. Returns the event that reports it.
 */
export async function uploadWalFile(ctx: WalUploadContext, file: string): Promise<WalArchived> {
  const name = path.basename(file);
  const upload = randomBytes(4).toString('hex');
  const objectKey = ctx.store.key(walObjectPath({ ...ctx.naming, targetName: ctx.targetName, name, upload }));
  const dataKey = newDataKey();
  const wrappedKey = await wrapDataKey(dataKey, ctx.kek.publicJwk, ctx.kek.kid, {
    bid: walKeyId(name),
    aid: ctx.agentId,
    tid: ctx.targetId,
  });
  const encrypt = new EncryptStream(dataKey, DEFAULT_SEGMENT_BYTES);
  dataKey.fill(0);
  const { size, mtime } = await stat(file);
  const writer = await ctx.store.createWriter(objectKey, undefined, size);
  const z = spawn('zstd', ['-3', '-q', '-c', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    await Promise.all([pipeline(z.stdout, encrypt, writer.stream), childSuccess(z, 'zstd')]);
    const stored = await writer.commit();
    if (stored.sizeBytes !== encrypt.bytesOut)
      throw new AgentError(
        'size-mismatch',
        `storage holds ${stored.sizeBytes} bytes but ${encrypt.bytesOut} were sent`,
      );
  } catch (err) {
    await writer.abort().catch(() => {});
    throw err;
  }
  const archived: WalArchived = {
    type: 'wal.archived',
    targetId: ctx.targetId,
    name,
    objectKey,
    sizeBytes: encrypt.bytesOut,
    sha256: encrypt.digest(),
    wrappedKey,
    kekId: ctx.kek.kid,
    segmentBytes: ctx.segmentBytes,
    systemIdentifier: ctx.systemIdentifier,
    storageId: ctx.storage.id,
    completedAt: mtime.toISOString(),
    archivedAt: new Date().toISOString(),
  };
  const meta = {
    ...archived,
    version: 1,
    agentId: ctx.agentId,
    walBytes: size,
    compressAlgo: 'zstd',
    encryptAlgo: ENCRYPT_ALGO,
    segmentBytesEncrypted: DEFAULT_SEGMENT_BYTES,
  };
  await ctx.store.putSmall(`${objectKey}.meta.json`, Buffer.from(JSON.stringify(meta)));
  return archived;
}
