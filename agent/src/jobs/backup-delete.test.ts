import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type BackupMeta, backupTargetPrefix, type StorageSpec, type TargetSpec } from '@dbbackup/proto';
import { afterEach, describe, expect, it } from 'vitest';
import { openStore } from '../storage/open-store.js';
import { applyRetention } from './retention.js';

/**
 * `backup.delete` on the agent: it decides against what the storage holds, not what the
 * control plane believed, so a request the catalogue let through is still refused here.
 */

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const naming = { env: 'default', agentName: 'host-a' };
const target = {
  id: randomUUID(),
  engine: 'sqlite',
  name: 'shop',
  connection: { path: '/srv/shop.db' },
} as TargetSpec;

async function storeWith(backups: { id: string; at: string; parent?: string }[]) {
  const dir = mkdtempSync(path.join(tmpdir(), 'dbb-delete-'));
  dirs.push(dir);
  const storage: StorageSpec = { kind: 'local', id: randomUUID(), directory: dir, prefix: '' };
  const store = await openStore(storage);
  const prefix = backupTargetPrefix({ ...naming, dbType: 'sqlite', dbName: 'shop' });
  for (const b of backups) {
    const objectKey = store.key(`${prefix}${b.id}.dump.zst.enc`);
    const data = Buffer.from(`data of ${b.id}`);
    await store.putSmall(objectKey, data);
    const meta = {
      version: 1,
      filename: `${b.id}.dump.zst.enc`,
      objectKey,
      backupId: b.id,
      targetId: target.id,
      targetName: 'shop',
      agentId: randomUUID(),
      dbType: 'sqlite',
      dbHost: 'localhost',
      dbPort: null,
      dbName: 'shop',
      startTime: b.at,
      endTime: b.at,
      durationMs: 1,
      sizeBytes: data.length,
      dumpBytes: data.length,
      sha256: '0'.repeat(64),
      compressAlgo: 'zstd',
      encryptAlgo: 'aes-256-gcm',
      segmentBytes: 65536,
      chunks: 1,
      status: 'completed',
      wrappedKey: 'k',
      kekId: 'kek',
      engineVersion: '3',
      toolVersion: '3',
      tables: [],
      ...(b.parent
        ? { engineMeta: { kind: 'physical', incremental: 'true', parentBackupId: b.parent } }
        : {}),
    } satisfies BackupMeta;
    await store.putSmall(`${objectKey}.meta.json`, Buffer.from(JSON.stringify(meta)));
  }
  return {
    storage,
    store,
    exists: async (id: string) => (await store.list(store.key(prefix))).some((l) => l.key.includes(id)),
  };
}

const run = (storage: StorageSpec, backupId: string, deleted: string[], keep?: Set<string>) =>
  applyRetention({
    target,
    storage,
    naming,
    policy: {},
    only: { backupId, reason: 'deleted on request by ada' },
    ...(keep ? { keep } : {}),
    log: () => undefined,
    onDeleted: async (d) => {
      deleted.push(`${d.backupId}: ${d.reason}`);
    },
  });

describe('deleting one backup on request', () => {
  const [old, mid, newest] = [randomUUID(), randomUUID(), randomUUID()];
  const three = [
    { id: old, at: '2026-11-01T00:00:00Z' },
    { id: mid, at: '2026-11-02T00:00:00Z' },
    { id: newest, at: '2026-11-03T00:00:00Z' },
  ];

  it('removes that backup, meta.json and data, and nothing else', async () => {
    const s = await storeWith(three);
    const deleted: string[] = [];
    const out = await run(s.storage, mid, deleted);
    expect(deleted).toEqual([`${mid}: deleted on request by ada`]);
    expect(out.deleted.map((d) => d.backupId)).toEqual([mid]);
    expect(await s.exists(mid)).toBe(false);
    expect(await s.exists(old)).toBe(true);
    expect(await s.exists(newest)).toBe(true);
  });

  it('refuses the newest good backup, one a kept backup is built on, one a drill proved, and one not there', async () => {
    const parent = randomUUID();
    const child = randomUUID();
    const s = await storeWith([
      ...three,
      { id: parent, at: '2026-10-01T00:00:00Z' },
      { id: child, at: '2026-10-02T00:00:00Z', parent },
    ]);
    const deleted: string[] = [];
    await expect(run(s.storage, newest, deleted)).rejects.toThrow(/newest good backup/);
    await expect(run(s.storage, parent, deleted)).rejects.toThrow(/incremental base backup is built on it/);
    await expect(run(s.storage, old, deleted, new Set([old]))).rejects.toThrow(/drill proved/);
    await expect(run(s.storage, randomUUID(), deleted)).rejects.toThrow(/not among the target's backups/);
    expect(deleted).toEqual([]);
    for (const id of [newest, parent, old, child]) expect(await s.exists(id)).toBe(true);
  });
});
