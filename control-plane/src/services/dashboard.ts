import { sql } from 'kysely';
import type { Db } from '../db/database.js';
import { nextRunOf } from './schedule-times.js';

/**
 * The web dashboard's aggregates, each a fixed number of indexed queries whatever the size
 * of the catalogue: the fleet in numbers with 30 days of backups by day, and every target's
 * health in one row with a 30-day strip of day cells.
 */

export const STRIP_DAYS = 30;

/**
 * One character per UTC day, oldest first, today last: `g` a good backup that day, `r` a
 * backup running (today), `f` a backup failed and none good, `m` a backup missed (its
 * schedule's alert fired) and none good, `-` nothing.
 */
export type DayStrip = string;

export async function fleetOverview(db: Db, now = new Date()) {
  const from = startOfDay(now, STRIP_DAYS - 1);
  const [agents, targets, days, last24h, stored, alerts] = await Promise.all([
    sql<{ status: string; n: number }>`SELECT status, count(*)::int AS n FROM agents GROUP BY status`.execute(
      db,
    ),
    sql<{ total: number; overdue: number; failing: number; never: number; running: number }>`
      SELECT count(*)::int AS total,
             count(*) FILTER (WHERE EXISTS (
               SELECT 1 FROM alerts a WHERE a.kind = 'backup_missed' AND a.state = 'firing'
                                        AND a.subject = 'target:' || t.id))::int AS overdue,
             count(*) FILTER (WHERE (
               SELECT j.state FROM jobs j
                WHERE j.target_id = t.id AND j.type = 'backup' AND j.state IN ('succeeded', 'failed', 'stalled')
                ORDER BY j.created_at DESC LIMIT 1) IN ('failed', 'stalled'))::int AS failing,
             count(*) FILTER (WHERE NOT EXISTS (
               SELECT 1 FROM backups b WHERE b.target_id = t.id AND b.status = 'completed'
                                         AND b.deleted_at IS NULL))::int AS never,
             count(*) FILTER (WHERE EXISTS (
               SELECT 1 FROM jobs j WHERE j.target_id = t.id AND j.type = 'backup'
                                      AND j.state IN ('queued', 'running')))::int AS running
        FROM targets t`.execute(db),
    sql<{ day: string; succeeded: number; failed: number; bytes: string | null }>`
      SELECT to_char(s.day, 'YYYY-MM-DD') AS day,
             coalesce(ok.n, 0)::int AS succeeded, coalesce(bad.n, 0)::int AS failed, ok.bytes
        FROM generate_series(date_trunc('day', ${from}::timestamptz AT TIME ZONE 'UTC'),
                             ${now}::timestamptz AT TIME ZONE 'UTC', interval '1 day') AS s(day)
        LEFT JOIN (SELECT date_trunc('day', started_at AT TIME ZONE 'UTC') AS day, count(*) AS n,
                          sum(size_bytes) AS bytes
                     FROM backups WHERE started_at >= ${from} AND status = 'completed' GROUP BY 1) ok
               ON ok.day = s.day
        LEFT JOIN (SELECT date_trunc('day', created_at AT TIME ZONE 'UTC') AS day, count(*) AS n
                     FROM jobs WHERE created_at >= ${from} AND type = 'backup' AND state IN ('failed', 'stalled')
                    GROUP BY 1) bad
               ON bad.day = s.day
       ORDER BY s.day`.execute(db),
    sql<{ succeeded: number; failed: number }>`
      SELECT count(*) FILTER (WHERE state = 'succeeded')::int AS succeeded,
             count(*) FILTER (WHERE state IN ('failed', 'stalled'))::int AS failed
        FROM jobs WHERE created_at >= ${new Date(now.getTime() - 86_400_000)} AND type = 'backup'`.execute(
      db,
    ),
    sql<{ bytes: string | null; n: number }>`
      SELECT sum(size_bytes) AS bytes, count(*)::int AS n FROM backups WHERE deleted_at IS NULL AND status = 'completed'`.execute(
      db,
    ),
    sql<{ n: number }>`SELECT count(*)::int AS n FROM alerts WHERE state = 'firing'`.execute(db),
  ]);
  const by = Object.fromEntries(agents.rows.map((r) => [r.status, r.n])) as Record<string, number>;
  const t = targets.rows[0] ?? { total: 0, overdue: 0, failing: 0, never: 0, running: 0 };
  const l = last24h.rows[0] ?? { succeeded: 0, failed: 0 };
  return {
    agents: {
      total: agents.rows.reduce((a, r) => a + r.n, 0),
      online: by.online ?? 0,
      offline: by.offline ?? 0,
      pending: by.pending ?? 0,
      revoked: by.revoked ?? 0,
    },
    targets: {
      total: t.total,
      overdue: t.overdue,
      failing: t.failing,
      neverBackedUp: t.never,
      running: t.running,
    },
    last24h: {
      succeeded: l.succeeded,
      failed: l.failed,
      successRate: l.succeeded + l.failed ? l.succeeded / (l.succeeded + l.failed) : null,
    },
    backupsStored: stored.rows[0]?.n ?? 0,
    bytesStored: Number(stored.rows[0]?.bytes ?? 0),
    firingAlerts: alerts.rows[0]?.n ?? 0,
    days: days.rows.map((d) => ({ ...d, bytes: Number(d.bytes ?? 0) })),
  };
}

function startOfDay(now: Date, daysBack: number): Date {
  const d = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()));
  return new Date(d.getTime() - daysBack * 86_400_000);
}

type TargetRow = {
  id: string;
  name: string;
  engine: string;
  agent_id: string;
  hostname: string;
  agent_status: string;
  storage: string | null;
  physical: boolean;
  last_good_at: Date | null;
  last_good_bytes: string | null;
  last_verified_at: Date | null;
  latest_state: string | null;
  overdue: boolean;
  running: boolean;
  strip: string;
};

/** Every target's health in one row (at most `limit`), with its day strip and next scheduled run. */
export async function targetsOverview(db: Db, now = new Date(), limit = 5000) {
  const from = startOfDay(now, STRIP_DAYS - 1);
  const { rows } = await sql<TargetRow>`
    WITH days AS (
      SELECT generate_series(${from}::timestamptz AT TIME ZONE 'UTC', ${now}::timestamptz AT TIME ZONE 'UTC', interval '1 day')::date AS d),
    good AS (SELECT DISTINCT target_id, (started_at AT TIME ZONE 'UTC')::date AS d FROM backups
              WHERE started_at >= ${from} AND status = 'completed' AND target_id IS NOT NULL),
    failed AS (SELECT DISTINCT target_id, (created_at AT TIME ZONE 'UTC')::date AS d FROM jobs
                WHERE created_at >= ${from} AND type = 'backup' AND state IN ('failed', 'stalled')),
    missed AS (SELECT DISTINCT target_id, (fired_at AT TIME ZONE 'UTC')::date AS d FROM alerts
                WHERE fired_at >= ${from} AND kind = 'backup_missed' AND target_id IS NOT NULL),
    strips AS (
      SELECT t.id, string_agg(CASE WHEN g.d IS NOT NULL THEN 'g'
                                   WHEN f.d IS NOT NULL THEN 'f'
                                   WHEN m.d IS NOT NULL THEN 'm' ELSE '-' END, '' ORDER BY days.d) AS strip
        FROM targets t CROSS JOIN days
        LEFT JOIN good g ON g.target_id = t.id AND g.d = days.d
        LEFT JOIN failed f ON f.target_id = t.id AND f.d = days.d
        LEFT JOIN missed m ON m.target_id = t.id AND m.d = days.d
       GROUP BY t.id)
    SELECT t.id, t.name, t.engine, t.agent_id, a.hostname, a.status AS agent_status, s.name AS storage,
           coalesce(t.options->>'physical', 'false') = 'true' AS physical,
           lg.started_at AS last_good_at, lg.size_bytes AS last_good_bytes,
           (SELECT v.finished_at FROM jobs v WHERE v.target_id = t.id AND v.type = 'verify' AND v.state = 'succeeded'
             ORDER BY v.finished_at DESC LIMIT 1) AS last_verified_at,
           (SELECT j.state FROM jobs j WHERE j.target_id = t.id AND j.type = 'backup'
                                         AND j.state IN ('succeeded', 'failed', 'stalled')
             ORDER BY j.created_at DESC LIMIT 1) AS latest_state,
           EXISTS (SELECT 1 FROM alerts al WHERE al.kind = 'backup_missed' AND al.state = 'firing'
                                             AND al.subject = 'target:' || t.id) AS overdue,
           EXISTS (SELECT 1 FROM jobs r WHERE r.target_id = t.id AND r.type = 'backup'
                                          AND r.state IN ('queued', 'running')) AS running,
           st.strip
      FROM targets t
      JOIN agents a ON a.id = t.agent_id
      LEFT JOIN storage_profiles s ON s.id = t.storage_id
      LEFT JOIN strips st ON st.id = t.id
      LEFT JOIN LATERAL (SELECT b.started_at, b.size_bytes FROM backups b
                          WHERE b.target_id = t.id AND b.status = 'completed' AND b.deleted_at IS NULL
                          ORDER BY b.started_at DESC LIMIT 1) lg ON true
     ORDER BY t.name, t.id
     LIMIT ${limit}`.execute(db);
  const schedules = await db
    .selectFrom('schedules')
    .select(['target_id', 'cron', 'timezone', 'enabled'])
    .where('enabled', '=', true)
    .execute();
  const next = new Map<string, string>();
  for (const s of schedules) {
    const at = nextRunOf(s);
    const cur = next.get(s.target_id);
    if (at && (!cur || at < cur)) next.set(s.target_id, at);
  }
  return rows.map((r) => ({
    id: r.id,
    name: r.name,
    engine: r.engine,
    physical: r.physical,
    agentId: r.agent_id,
    host: r.hostname,
    agentStatus: r.agent_status,
    storage: r.storage,
    lastGoodAt: r.last_good_at ? new Date(r.last_good_at).toISOString() : null,
    lastGoodBytes: r.last_good_bytes === null ? null : Number(r.last_good_bytes),
    lastVerifiedAt: r.last_verified_at ? new Date(r.last_verified_at).toISOString() : null,
    health: r.running
      ? 'running'
      : r.overdue
        ? 'overdue'
        : r.latest_state === 'failed' || r.latest_state === 'stalled'
          ? 'failing'
          : r.last_good_at
            ? 'healthy'
            : 'never',
    nextRunAt: next.get(r.id) ?? null,
    strip: withToday(r.strip ?? '-'.repeat(STRIP_DAYS), r.running),
  }));
}

/** Today's cell says `r` while a backup runs and none has succeeded yet today. */
function withToday(strip: string, running: boolean): DayStrip {
  if (!running || strip.endsWith('g')) return strip;
  return `${strip.slice(0, -1)}r`;
}
