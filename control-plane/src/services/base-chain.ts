import {
  BackupMeta as BackupMetaSchema,
  type BackupMetaSummary,
  chainOf,
  summariseMeta,
} from '@dbbackup/proto';
import type { JWK } from 'jose';
import { KeyBindingRefused, KeyUnavailable, rewrapForAgent } from '../crypto/key-encryption-key.js';
import type { SecretBox } from '../crypto/secret-box.js';
import type { Db } from '../db/database.js';
import { conflict, ProblemError } from '../problem.js';
import { storageRefFor } from './storage-specs.js';

/** Base backups as a restore carries them: data keys re-wrapped, and an incremental one's chain. */

export async function rewrapOrRefuse(
  db: Db,
  box: SecretBox,
  k: Parameters<typeof rewrapForAgent>[2],
  agent: { agentId: string; publicJwk: JWK },
  expiresAt: Date,
) {
  try {
    return (await rewrapForAgent(db, box, k, agent, expiresAt)).jwe;
  } catch (err) {
    if (err instanceof KeyBindingRefused || err instanceof KeyUnavailable)
      throw conflict(`${k.backupId} cannot be opened: ${err.message}`, 'key-unavailable');
    throw err;
  }
}

/**
 * The base backups an incremental one is built on (PostgreSQL 17), oldest first, each as a
 * restore carries it; undefined for a full base backup. A chain with a backup gone from the
 * catalogue cannot be restored: 422, before anything is written.
 */
export async function ancestorRefs(
  db: Db,
  box: SecretBox,
  recipient: { agentId: string; publicJwk: JWK },
  targetId: string,
  base: BackupMetaSummary,
  expiresAt: Date,
) {
  if (base.engineMeta?.incremental !== 'true') return undefined;
  const rows = await db
    .selectFrom('backups')
    .selectAll()
    .where('target_id', '=', targetId)
    .where('status', '=', 'completed')
    .where('deleted_at', 'is', null)
    .execute();
  const byId = new Map(
    rows.map((r) => [r.id, { row: r, meta: summariseMeta(BackupMetaSchema.parse(r.meta)) }]),
  );
  const chain = chainOf(base, (id) => byId.get(id)?.meta);
  if (!chain)
    throw new ProblemError(
      422,
      'Unprocessable Content',
      `base backup ${base.backupId} is incremental and a backup it is built on is gone: take a full base backup`,
      { type: 'broken-chain' },
    );
  const out = [];
  for (const m of chain.slice(0, -1)) {
    const { row } = byId.get(m.backupId)!;
    const k = {
      backupId: row.id,
      agentId: row.agent_id,
      targetId,
      wrappedKey: m.wrappedKey,
      kekId: m.kekId,
      keyBound: row.key_bound,
    };
    out.push({
      backupId: row.id,
      storage: await storageRefFor(db, row.storage_id),
      meta: m,
      wrappedKeyForAgent: await rewrapOrRefuse(db, box, k, recipient, expiresAt),
    });
  }
  return out;
}
