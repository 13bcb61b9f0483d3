import { sql } from 'kysely';
import type { Db } from '../db/database.js';

/** A job in a terminal state, with what metrics and notifications need of its target, agent and backup. */
export type FinishedJob = NonNullable<Awaited<ReturnType<typeof loadFinishedJob>>>;

export function loadFinishedJob(db: Db, jobId: string) {
  return db
    .selectFrom('jobs as j')
    .leftJoin('targets as t', 't.id', 'j.target_id')
    .leftJoin('agents as a', 'a.id', 'j.agent_id')
    .leftJoin('backups as b', 'b.id', 'j.backup_id')
    .leftJoin('storage_profiles as sp', 'sp.id', 'j.storage_id')
    .select([
      'j.id',
      'j.type',
      'j.state',
      'j.error',
      'j.result',
      'j.params',
      'j.target_id',
      'j.created_at',
      'j.started_at',
      'j.finished_at',
      't.name as target',
      't.engine as targetEngine',
      'j.storage_id',
      'sp.kind as storageKind',
      'a.hostname',
      sql<string | null>`b.meta->>'dbType'`.as('backupEngine'),
    ])
    .where('j.id', '=', jobId)
    .executeTakeFirst();
}
