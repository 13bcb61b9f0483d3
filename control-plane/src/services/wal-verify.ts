import { randomUUID } from 'node:crypto';
import type { Command } from '@dbbackup/proto';
import type { JWK } from 'jose';
import type { SecretBox } from '../crypto/secret-box.js';
import type { Db } from '../db/database.js';
import { conflict, notFound } from '../problem.js';
import { fireAlert, resolveAlert } from './alerts.js';
import { agentFor, insertJob } from './job-creation.js';
import { MAX_WAL_FILES, walKeysFor } from './pitr-restore.js';
import { recoveryWindow } from './recovery-window.js';
import { storageRefFor } from './storage-specs.js';
import { targetSpecFromRow } from './target-specs.js';

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
  const row = await db.selectFrom('targets').selectAll().where('id', '=', targetId).executeTakeFirst();
  if (!row) throw notFound('target');
  const spec = targetSpecFromRow(row);
  if (!spec.options.physical)
    throw conflict('this target archives no WAL (options.physical is not set)', 'not-physical');
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

/**
 * A chain check finished: the files it found missing or corrupt (only names it was asked
 * about count) leave the index, and the gap alert follows the recovery window.
 */
export async function walVerifyFinished(
  tx: Db,
  job: { id: string; state: string; target_id: string | null; params: unknown; result: unknown },
) {
  if (job.state !== 'succeeded' || !job.target_id) return;
  const asked = new Set(
    ((job.params as { names?: string[] } | null)?.names ?? []).filter((n) => typeof n === 'string'),
  );
  const r = job.result as { missing?: unknown; corrupt?: unknown } | null;
  const names = [
    ...(Array.isArray(r?.missing) ? r.missing : []),
    ...(Array.isArray(r?.corrupt) ? r.corrupt.map((c) => (c as { name?: unknown })?.name) : []),
  ].filter((n): n is string => typeof n === 'string' && asked.has(n));
  if (names.length)
    await tx
      .updateTable('wal_files')
      .set({ deleted_at: new Date() })
      .where('target_id', '=', job.target_id)
      .where('name', 'in', names)
      .where('deleted_at', 'is', null)
      .execute();
  await refreshWalGap(tx, job.target_id);
}

/** wal_gap fires while the archive after the oldest base backup has a hole, and is resolved when it has none. */
export async function refreshWalGap(db: Db, targetId: string) {
  const w = await recoveryWindow(db, targetId);
  const subject = `target:${targetId}`;
  if (!w.gaps.length) {
    await resolveAlert(db, 'wal_gap', subject);
    return;
  }
  const t = await db.selectFrom('targets').select('name').where('id', '=', targetId).executeTakeFirst();
  const g = w.gaps[0]!;
  await fireAlert(db, {
    kind: 'wal_gap',
    subject,
    targetId,
    message: `the WAL archive of ${t?.name ?? targetId} is missing ${g.missingFrom}${g.missingTo !== g.missingFrom ? ` to ${g.missingTo}` : ''}: points after ${g.restorableUntil?.toISOString() ?? 'it'} cannot be restored until a new base backup is taken`,
    details: { gaps: w.gaps },
  });
}
