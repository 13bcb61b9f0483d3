import type { RetentionCandidate } from '@dbbackup/proto';
import { sql } from 'kysely';
import type { Db } from '../db/database.js';
import { drillVerdicts } from './drill-verdicts.js';

/**
 * A target's backups as retention sees them in the catalogue: good = committed, not failed
 * by a verify, and not a backup whose newest drill failed; with the drills' verdicts (the
 * newest backup a drill proved stays while a newer one failed its drill) and each backup's
 * engineMeta (incremental chains). The retention preview and a backup's deletion read this.
 */
export async function catalogueCandidates(db: Db, targetId: string) {
  const rows = await db
    .selectFrom('backups')
    .select(['id', 'started_at', 'status', sql<Record<string, string> | null>`meta->'engineMeta'`.as('em')])
    .where('target_id', '=', targetId)
    .where('deleted_at', 'is', null)
    .execute();
  const failedVerify = new Set(
    (
      await db
        .selectFrom('jobs')
        .select('backup_id')
        .where('type', '=', 'verify')
        .where('state', '=', 'failed')
        .where('target_id', '=', targetId)
        .execute()
    ).map((j) => j.backup_id),
  );
  const drills = await drillVerdicts(db, targetId);
  const unproven = new Set(drills.unproven);
  const candidates: RetentionCandidate[] = rows.map((r) => ({
    id: r.id,
    startedAt: new Date(r.started_at).toISOString(),
    good: r.status === 'completed' && !failedVerify.has(r.id) && !unproven.has(r.id),
  }));
  const chain = rows.map((r) => ({ backupId: r.id, engineMeta: r.em ?? undefined }));
  return { candidates, chain, drills };
}
