import { sql } from 'kysely';
import type { Db } from '../db/database.js';
import { observeJobFinished } from './metrics.js';
import { notifyJobFinished } from './notifications.js';

/** A job in a terminal state, with what metrics and notifications need of its target, agent and backup. */
export type FinishedJob = NonNullable<Awaited<ReturnType<typeof loadFinishedJob>>>;

function loadFinishedJob(db: Db, jobId: string) {
  return db
    .selectFrom('jobs as j')
    .leftJoin('targets as t', 't.id', 'j.target_id')
    .leftJoin('agents as a', 'a.id', 'j.agent_id')
    .leftJoin('backups as b', 'b.id', 'j.backup_id')
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
      't.storage_id as targetStorage',
      'a.hostname',
      sql<string | null>`b.meta->>'dbType'`.as('backupEngine'),
    ])
    .where('j.id', '=', jobId)
    .executeTakeFirst();
}

/** A job reached a terminal state (inside the transaction that applied it): metrics and notifications. */
export async function jobFinished(tx: Db, jobId: string) {
  const job = await loadFinishedJob(tx, jobId);
  if (!job?.finished_at) return;
  await observeJobFinished(tx, job);
  await notifyJobFinished(tx, job);
}
