import { randomUUID } from 'node:crypto';
import type { Command } from '@dbbackup/proto';
import type { JWK } from 'jose';
import type { SecretBox } from '../crypto/secret-box.js';
import type { Db } from '../db/database.js';
import { conflict } from '../problem.js';
import { agentFor, insertJob } from './job-creation.js';
import { MAX_WAL_FILES, physicalTarget, walKeysFor } from './pitr-restore.js';
import { storageRefFor } from './storage-specs.js';

/**
 * Start a chain check of a physical target: the newest archived WAL files (at most
 * MAX_WAL_FILES) sent to its agent with their keys re-wrapped for it; the agent checks
 * each is in storage and authenticates. The names asked about are kept with the job:
 * only those may come back as missing or corrupt.
 */
export async function startWalVerify(
  db: Db,
  box: SecretBox,
  targetId: string,
  createdBy: string | null,
  ttlSeconds: number,
) {
  const { row, spec } = await physicalTarget(
    db,
    targetId,
    'this target archives no WAL (options.physical is not set)',
  );
  const files = (
    await db
      .selectFrom('wal_files')
      .selectAll()
      .where('target_id', '=', targetId)
      .where('deleted_at', 'is', null)
      .orderBy('name', 'desc')
      .limit(MAX_WAL_FILES)
      .execute()
  ).reverse();
  if (!files.length) throw conflict('this target has no archived WAL yet', 'no-wal');
  const agent = await agentFor(db, row.agent_id);
  if (!agent.encryption_jwk)
    throw conflict('this agent has no encryption key; re-enrol it', 'agent-key-missing');
  const expiresAt = new Date(Date.now() + (ttlSeconds + 86_400) * 1000);
  const recipient = { agentId: agent.id, publicJwk: agent.encryption_jwk as JWK };
  const jobId = randomUUID();
  const command: Command = {
    kind: 'wal.verify',
    jobId,
    target: spec,
    walStorage: await storageRefFor(db, row.storage_id),
    files: await walKeysFor(db, box, files, targetId, recipient, expiresAt),
  };
  return insertJob(db, {
    type: 'wal_verify',
    agentId: agent.id,
    targetId,
    backupId: null,
    storageId: row.storage_id,
    command,
    jobId,
    params: { names: files.map((f) => f.name) },
    createdBy,
    ttlSeconds,
  });
}
