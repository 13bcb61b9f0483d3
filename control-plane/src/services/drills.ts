import { sql } from 'kysely';
import type { SecretBox } from '../crypto/secret-box.js';
import type { Db } from '../db/database.js';
import { conflict } from '../problem.js';
import { startRestoreOrVerify } from './job-creation.js';
import { startPitrDrill } from './pitr-restore.js';
import { cronOf } from './schedule-times.js';

/**
 * Restore drills: each target's newest good backup restored on a schedule (or after every
 * Nth backup, or on demand) into a scratch destination its agent makes and removes, with
 * the time it took (RTO as measured) and the backup's age (RPO) recorded per drill.
 */

/** The newest backup of a target a drill should prove: committed, not removed, not failed by a verify. */
export async function newestGoodBackup(db: Db, targetId: string) {
  return db
    .selectFrom('backups as b')
    .select(['b.id', 'b.finished_at'])
    .where('b.target_id', '=', targetId)
    .where('b.status', '=', 'completed')
    .where('b.deleted_at', 'is', null)
    .where(({ not, exists, selectFrom }) =>
      not(
        exists(
          selectFrom('jobs as v')
            .select('v.id')
            .whereRef('v.backup_id', '=', 'b.id')
            .where('v.type', '=', 'verify')
            .where('v.state', '=', 'failed'),
        ),
      ),
    )
    .orderBy('b.started_at', 'desc')
    .limit(1)
    .executeTakeFirst();
}

/** Start a drill of the target's newest good backup now. */
export async function startDrill(
  db: Db,
  box: SecretBox,
  targetId: string,
  createdBy: string | null,
  ttlSeconds: number,
) {
  const running = await db
    .selectFrom('jobs')
    .select('id')
    .where('target_id', '=', targetId)
    .where('type', '=', 'drill')
    .where('state', 'in', ['queued', 'running'])
    .executeTakeFirst();
  if (running)
    throw conflict(`a drill of this target is already under way (job ${running.id})`, 'drill-in-progress');
  const policy = await db
    .selectFrom('drill_policies')
    .select(['max_restore_seconds', 'max_data_age_seconds'])
    .where('target_id', '=', targetId)
    .executeTakeFirst();
  if (await isPhysical(db, targetId))
    return startPitrDrill(
      db,
      box,
      targetId,
      {
        maxRestoreSeconds: policy?.max_restore_seconds ?? undefined,
        maxDataAgeSeconds: policy?.max_data_age_seconds ?? undefined,
      },
      createdBy,
      ttlSeconds,
    );
  const backup = await newestGoodBackup(db, targetId);
  if (!backup) throw conflict('this target has no good backup to drill yet', 'no-backup');
  return startRestoreOrVerify(
    db,
    box,
    backup.id,
    {
      type: 'drill',
      maxRestoreSeconds: policy?.max_restore_seconds ?? undefined,
      maxDataAgeSeconds: policy?.max_data_age_seconds ?? undefined,
    },
    createdBy,
    ttlSeconds,
  );
}

/** A physical target's drill replays its chain (base backup and WAL), not one dump. */
async function isPhysical(db: Db, targetId: string) {
  const t = await db.selectFrom('targets').select('options').where('id', '=', targetId).executeTakeFirst();
  return (t?.options as { physical?: boolean } | undefined)?.physical === true;
}

/** Whether a policy's drill is due now: its schedule fired, or N backups were made since the last drill. */
async function isDue(
  db: Db,
  p: {
    target_id: string;
    cron: string | null;
    timezone: string;
    every_n_backups: number | null;
    since: Date;
  },
  now: Date,
) {
  if (p.cron) {
    const next = cronOf(p.cron, p.timezone).nextRun(p.since);
    if (next && next <= now) return true;
  }
  if (p.every_n_backups) {
    const n = await db
      .selectFrom('backups')
      .select(sql<number>`count(*)::int`.as('n'))
      .where('target_id', '=', p.target_id)
      .where('status', '=', 'completed')
      .where('started_at', '>', p.since)
      .executeTakeFirstOrThrow();
    if (n.n >= p.every_n_backups) return true;
  }
  return false;
}

/**
 * The drills whose time has come (the sweeper calls this every few seconds). A drill that
 * cannot start (no backup yet, one under way, the agent revoked) is said in the log and
 * tried at the policy's next turn.
 */
export async function runDueDrills(
  db: Db,
  box: SecretBox,
  ttlSeconds: number,
  onStarted: (agentId: string) => Promise<void>,
  warn: (o: object, m: string) => void,
  now = new Date(),
) {
  const policies = await db
    .selectFrom('drill_policies')
    .select(['target_id', 'cron', 'timezone', 'every_n_backups', 'last_started_at', 'updated_at'])
    .where('enabled', '=', true)
    .execute();
  for (const p of policies) {
    const since = new Date(
      Math.max(new Date(p.last_started_at ?? 0).getTime(), new Date(p.updated_at).getTime()),
    );
    if (!(await isDue(db, { ...p, since }, now))) continue;
    await db
      .updateTable('drill_policies')
      .set({ last_started_at: now })
      .where('target_id', '=', p.target_id)
      .execute();
    try {
      const job = await startDrill(db, box, p.target_id, null, ttlSeconds);
      await onStarted(job.agent_id);
    } catch (err) {
      warn({ targetId: p.target_id, err: (err as Error).message }, 'scheduled drill not started');
    }
  }
}
