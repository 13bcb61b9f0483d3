import { sql } from 'kysely';
import type { Db } from '../db/database.js';

/** What restore drills say about a target's backups, for retention (the control plane's and the agent's). */

/** Drill failures that say nothing about the backup: the drill could not run. */
export const NOT_THE_BACKUPS_FAULT = [
  'insufficient-space',
  'interrupted',
  'expired',
  'cancelled',
  'unsupported',
];

/**
 * What a target's drills say about its backups: `unproven`, those whose newest drill restored
 * them and failed (the newest 1000); `keep`, the newest backup a drill proved that is older
 * than the newest unproven one, which retention keeps while that failure stands.
 */
export async function drillVerdicts(
  db: Db,
  targetId: string,
): Promise<{ unproven: string[]; keep: string[] }> {
  const r = await sql<{ backup_id: string; proven: boolean; started_at: Date }>`
    SELECT n.backup_id, n.state = 'succeeded' AS proven, b.started_at FROM (
      SELECT DISTINCT ON (backup_id) backup_id, state, error FROM jobs
       WHERE target_id = ${targetId} AND type = 'drill' AND backup_id IS NOT NULL AND finished_at IS NOT NULL
       ORDER BY backup_id, created_at DESC) n
      JOIN backups b ON b.id = n.backup_id AND b.deleted_at IS NULL
     WHERE n.state = 'succeeded'
        OR (n.state = 'failed' AND coalesce(n.error->>'code', '') NOT IN (${sql.join(NOT_THE_BACKUPS_FAULT)}))
     ORDER BY b.started_at DESC
     LIMIT 1000`.execute(db);
  const unproven = r.rows.filter((x) => !x.proven);
  const newestFailure = unproven[0]?.started_at;
  const anchor = newestFailure
    ? r.rows.find((x) => x.proven && new Date(x.started_at) < new Date(newestFailure))
    : undefined;
  return { unproven: unproven.map((x) => x.backup_id), keep: anchor ? [anchor.backup_id] : [] };
}
