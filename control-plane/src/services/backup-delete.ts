import { chainAncestors, selectOne } from '@dbbackup/proto';
import type { Db } from '../db/database.js';
import { conflict, notFound } from '../problem.js';
import { createCommand } from './command-state.js';
import { catalogueCandidates } from './retention-catalogue.js';
import { storageRefFor } from './storage-specs.js';
import { targetSpecFromRow } from './target-specs.js';

/**
 * An operator's deletion of one backup: refused here, before anything is sent, when the
 * catalogue shows it must stay (the newest good backup of its target, a backup a kept
 * incremental is built on, the newest one a drill proved); otherwise the agent is asked to
 * delete it (`backup.delete`), checks the same rules against what the storage holds, and
 * reports `backup.deleted`, which leaves a tombstone in the catalogue.
 */
export async function requestBackupDelete(
  db: Db,
  backupId: string,
  by: { tokenId: string | null; name: string },
) {
  const b = await db.selectFrom('backups').selectAll().where('id', '=', backupId).executeTakeFirst();
  if (!b) throw notFound('backup');
  if (b.deleted_at)
    throw conflict(
      `backup ${b.id} was already deleted (${b.deleted_reason ?? 'no reason recorded'})`,
      'backup-deleted',
    );
  const t = await db.selectFrom('targets').selectAll().where('id', '=', b.target_id).executeTakeFirst();
  if (!t) throw notFound('target');
  const { candidates, chain, drills } = await catalogueCandidates(db, t.id);
  const reason = `deleted on request by ${by.name}`.slice(0, 200);
  const decision = selectOne(candidates, b.id, reason);
  if ('refused' in decision) throw conflict(`backup ${b.id} stays: ${decision.refused}`, 'backup-protected');
  if (drills.keep.includes(b.id))
    throw conflict(
      `backup ${b.id} stays: it is the newest backup a drill proved, and a newer one failed its drill`,
      'backup-protected',
    );
  const builtOn = chainAncestors(
    chain,
    candidates.map((c) => c.id).filter((id) => id !== b.id),
  );
  if (builtOn.has(b.id))
    throw conflict(
      `backup ${b.id} stays: an incremental base backup is built on it; delete that one first`,
      'backup-protected',
    );
  const agent = await db
    .selectFrom('agents')
    .select(['hostname', 'labels', 'status'])
    .where('id', '=', t.agent_id)
    .executeTakeFirstOrThrow();
  if (agent.status === 'revoked')
    throw conflict('the agent of this backup is revoked; nothing can delete it for you', 'agent-revoked');
  const commandId = await createCommand(db, {
    agentId: t.agent_id,
    command: {
      kind: 'backup.delete',
      target: targetSpecFromRow(t),
      storage: await storageRefFor(db, b.storage_id),
      naming: { env: (agent.labels as Record<string, string>).env ?? 'default', agentName: agent.hostname },
      backupId: b.id,
      reason,
    },
    ttlSeconds: 86_400,
    createdBy: by.tokenId,
  });
  return { commandId, agentId: t.agent_id, backupId: b.id };
}
