import { randomUUID } from 'node:crypto';
import { type Db, json } from '../db/database.js';
import type { AlertKind } from '../db/schema.js';
import { type NotifyEvent, notify } from './notifications.js';
import { cronOf } from './schedule-times.js';

type Kind = AlertKind;

export const ALERT_KINDS = [
  'backup_missed',
  'job_stalled',
  'agent_event_rejected',
  'key_unavailable',
  'drill_failed',
  'rto_exceeded',
  'rpo_exceeded',
  'wal_gap',
  'wal_archive_lag',
] as const satisfies readonly AlertKind[];

const NOTIFY_FOR: Record<AlertKind, NotifyEvent> = {
  backup_missed: 'backup.missed',
  job_stalled: 'job.stalled',
  agent_event_rejected: 'security.event_rejected',
  key_unavailable: 'security.key_unavailable',
  drill_failed: 'drill.failed',
  rto_exceeded: 'drill.rto_exceeded',
  rpo_exceeded: 'drill.rpo_exceeded',
  wal_gap: 'wal.gap',
  wal_archive_lag: 'wal.archive_lag',
};

/** Raise an alert unless one of that kind and subject is already firing. Returns whether it is new. */
export async function fireAlert(
  db: Db,
  a: {
    kind: Kind;
    subject: string;
    message: string;
    targetId?: string | null;
    jobId?: string | null;
    details?: Record<string, unknown>;
  },
): Promise<boolean> {
  const r = await db
    .insertInto('alerts')
    .values({
      id: randomUUID(),
      kind: a.kind,
      state: 'firing',
      subject: a.subject,
      message: a.message,
      target_id: a.targetId ?? null,
      job_id: a.jobId ?? null,
      details: json(a.details ?? {}),
    })
    .onConflict((oc) => oc.doNothing())
    .executeTakeFirst();
  const fired = Number(r.numInsertedOrUpdatedRows ?? 0) > 0;
  if (fired) {
    await notify(db, NOTIFY_FOR[a.kind], {
      title: a.message,
      message: a.message,
      subject: a.subject,
      targetId: a.targetId ?? null,
      jobId: a.jobId ?? null,
      ...(a.details ?? {}),
    });
  }
  return fired;
}

export async function resolveAlert(db: Db, kind: Kind, subject: string): Promise<boolean> {
  const r = await db
    .updateTable('alerts')
    .set({ state: 'resolved', resolved_at: new Date() })
    .where('kind', '=', kind)
    .where('subject', '=', subject)
    .where('state', '=', 'firing')
    .executeTakeFirst();
  return Number(r.numUpdatedRows) > 0;
}

/** The newest good backup of a target (committed, not removed by retention). */
export async function lastGoodBackup(db: Db, targetId: string): Promise<Date | undefined> {
  const r = await db
    .selectFrom('backups')
    .select((eb) => eb.fn.max('started_at').as('at'))
    .where('target_id', '=', targetId)
    .where('status', '=', 'completed')
    .where('deleted_at', 'is', null)
    .executeTakeFirst();
  return r?.at ? new Date(r.at as unknown as string) : undefined;
}

/**
 * When a target should next have a backup: the first fire of any enabled schedule
 * after its last good backup (or after the schedule was created, if it has none).
 * In the past means a run is due or was missed.
 */
export async function nextExpectedRun(
  db: Db,
  targetId: string,
): Promise<{ at: Date; scheduleId: string } | undefined> {
  const schedules = await db
    .selectFrom('schedules')
    .selectAll()
    .where('target_id', '=', targetId)
    .where('enabled', '=', true)
    .execute();
  if (!schedules.length) return undefined;
  const last = await lastGoodBackup(db, targetId);
  let best: { at: Date; scheduleId: string } | undefined;
  for (const s of schedules) {
    const from = new Date(Math.max(last?.getTime() ?? 0, new Date(s.created_at).getTime()));
    const at = cronOf(s.cron, s.timezone).nextRun(from);
    if (at && (!best || at < best.at)) best = { at, scheduleId: s.id };
  }
  return best;
}

/** RPO and the next expected run of a target, for its view. */
export async function targetHealth(db: Db, targetId: string, now = new Date()) {
  const [last, next] = await Promise.all([lastGoodBackup(db, targetId), nextExpectedRun(db, targetId)]);
  return {
    lastGoodBackupAt: last?.toISOString() ?? null,
    rpoSeconds: last ? Math.round((now.getTime() - last.getTime()) / 1000) : null,
    nextExpectedRun: next?.at.toISOString() ?? null,
  };
}

/**
 * `job_stalled`: a job running past `maxDurationMs`, or whose agent is offline. It is
 * marked stalled; if the agent later reports it finished, the job takes its real
 * outcome (the events carry it) and the alert resolves.
 */
export async function sweepStalledJobs(db: Db, maxDurationMs: number, now = new Date()) {
  const running = await db
    .selectFrom('jobs')
    .innerJoin('agents', 'agents.id', 'jobs.agent_id')
    .select(['jobs.id', 'jobs.target_id', 'jobs.started_at', 'agents.status as agentStatus'])
    .where('jobs.state', '=', 'running')
    .execute();
  const stalled: string[] = [];
  for (const j of running) {
    const tooLong = j.started_at && now.getTime() - new Date(j.started_at).getTime() > maxDurationMs;
    const agentGone = j.agentStatus === 'offline' || j.agentStatus === 'revoked';
    if (!tooLong && !agentGone) continue;
    const r = await db
      .updateTable('jobs')
      .set({ state: 'stalled' })
      .where('id', '=', j.id)
      .where('state', '=', 'running')
      .executeTakeFirst();
    if (Number(r.numUpdatedRows) === 0) continue;
    const why = tooLong
      ? `running longer than ${Math.round(maxDurationMs / 1000)} s`
      : 'its agent went offline';
    await fireAlert(db, {
      kind: 'job_stalled',
      subject: `job:${j.id}`,
      jobId: j.id,
      targetId: j.target_id,
      message: `job ${j.id} stalled: ${why}`,
    });
    stalled.push(j.id);
  }
  // Reconciled jobs (the agent reported them finished after all) resolve their alerts.
  const firing = await db
    .selectFrom('alerts')
    .select(['subject', 'job_id'])
    .where('kind', '=', 'job_stalled')
    .where('state', '=', 'firing')
    .execute();
  for (const a of firing) {
    if (!a.job_id) continue;
    const job = await db.selectFrom('jobs').select('state').where('id', '=', a.job_id).executeTakeFirst();
    if (job?.state !== 'stalled') await resolveAlert(db, 'job_stalled', a.subject);
  }
  return stalled;
}
