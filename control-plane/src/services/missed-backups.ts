import { sql } from 'kysely';
import type { Db } from '../db/database.js';
import { fireAlert, resolveAlert } from './alerts.js';
import { cronOf } from './schedule-times.js';

/** Rows one sweep looks at, at most (the rest are next). */
const BATCH = 2000;

type Due = {
  id: string;
  target_id: string;
  name: string;
  cron: string;
  timezone: string;
  created_at: Date;
  last_good: Date | null;
};

/**
 * `backup_missed`: a target whose schedule should have produced a backup more than `graceMs`
 * ago and has no good backup since. A good backup resolves it.
 *
 * Built to stay cheap with 50 000 targets: each enabled schedule keeps the sweep's note of
 * when it next expects a backup (`next_expected_at`, indexed). A sweep reads only schedules
 * whose note is missing or has passed by more than the grace — a note is never later than
 * the truth, since the last good backup it was computed from can only have moved forward —
 * works out the real time from the current last good backup, and fires, resolves or moves
 * the note on, in a few statements. A schedule that is edited loses its note.
 */
export async function sweepMissedBackups(db: Db, graceMs: number, now = new Date()) {
  // One replica at a time: the others skip this round rather than redo the same work.
  return db.connection().execute(async (conn) => {
    const { rows } = await sql<{ ok: boolean }>`SELECT pg_try_advisory_lock(${SWEEP_LOCK}) AS ok`.execute(
      conn,
    );
    if (!rows[0]?.ok) return { fired: [] as string[], resolved: [] as string[] };
    try {
      return await sweepMissed(conn as Db, graceMs, now);
    } finally {
      await sql`SELECT pg_advisory_unlock(${SWEEP_LOCK})`.execute(conn);
    }
  });
}

const SWEEP_LOCK = 727003;

async function sweepMissed(db: Db, graceMs: number, now: Date) {
  const cutoff = new Date(now.getTime() - graceMs);
  const { rows } = await sql<Due>`
    SELECT s.id, s.target_id, t.name, s.cron, s.timezone, s.created_at,
           (SELECT max(b.started_at) FROM backups b
             WHERE b.target_id = s.target_id AND b.status = 'completed' AND b.deleted_at IS NULL) AS last_good
      FROM schedules s JOIN targets t ON t.id = s.target_id
     WHERE s.enabled AND (s.next_expected_at IS NULL OR s.next_expected_at < ${cutoff})
     ORDER BY s.next_expected_at NULLS FIRST
     LIMIT ${BATCH}`.execute(db);
  const overdue = new Map<string, { due: Due; at: Date }>();
  const notes: { id: string; at: string }[] = [];
  for (const [i, r] of rows.entries()) {
    // A large first sweep (notes not yet made) lets the event loop breathe.
    if (i % 200 === 199) await new Promise((res) => setImmediate(res));
    const from = new Date(
      Math.max(r.last_good ? new Date(r.last_good).getTime() : 0, new Date(r.created_at).getTime()),
    );
    const at = cronOf(r.cron, r.timezone).nextRun(from);
    notes.push({ id: r.id, at: at ? at.toISOString() : 'infinity' });
    const prev = overdue.get(r.target_id);
    if (at && at < cutoff && (!prev || at < prev.at)) overdue.set(r.target_id, { due: r, at });
  }
  if (notes.length)
    await sql`
      UPDATE schedules SET next_expected_at = v.at
        FROM (SELECT unnest(${notes.map((n) => n.id)}::uuid[]) AS id,
                     unnest(${notes.map((n) => n.at)}::timestamptz[]) AS at) v
       WHERE schedules.id = v.id`.execute(db);
  const firing = await firingTargets(db);
  const fired: string[] = [];
  for (const [targetId, { due, at }] of overdue) {
    if (firing.has(targetId)) continue;
    if (await fireMissed(db, due, at)) fired.push(targetId);
  }
  // Resolved: a firing target looked at here and no longer overdue, or with no enabled schedule left.
  const seen = new Set(rows.map((r) => r.target_id));
  const unscheduled = await firingWithoutSchedule(db);
  const resolved: string[] = [];
  for (const targetId of firing) {
    if (overdue.has(targetId) || (!seen.has(targetId) && !unscheduled.has(targetId))) continue;
    if (await resolveAlert(db, 'backup_missed', `target:${targetId}`)) resolved.push(targetId);
  }
  return { fired, resolved };
}

function fireMissed(db: Db, due: Due, at: Date) {
  const last = due.last_good ? new Date(due.last_good) : undefined;
  return fireAlert(db, {
    kind: 'backup_missed',
    subject: `target:${due.target_id}`,
    targetId: due.target_id,
    message: `no good backup of ${due.name} since ${last?.toISOString() ?? 'it was scheduled'}; one was expected at ${at.toISOString()}`,
    details: {
      expectedAt: at.toISOString(),
      scheduleId: due.id,
      lastGoodBackupAt: last?.toISOString() ?? null,
    },
  });
}

/** Targets with a firing backup_missed alert. */
async function firingTargets(db: Db): Promise<Set<string>> {
  const rows = await db
    .selectFrom('alerts')
    .select('subject')
    .where('kind', '=', 'backup_missed')
    .where('state', '=', 'firing')
    .execute();
  return new Set(rows.map((r) => r.subject.replace(/^target:/, '')));
}

/** Of those, the ones whose target has no enabled schedule any more (or is gone). */
async function firingWithoutSchedule(db: Db): Promise<Set<string>> {
  const { rows } = await sql<{ subject: string }>`
    SELECT a.subject FROM alerts a
     WHERE a.kind = 'backup_missed' AND a.state = 'firing'
       AND NOT EXISTS (SELECT 1 FROM schedules s WHERE 'target:' || s.target_id = a.subject AND s.enabled)`.execute(
    db,
  );
  return new Set(rows.map((r) => r.subject.replace(/^target:/, '')));
}
