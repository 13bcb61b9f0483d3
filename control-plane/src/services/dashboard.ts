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
    targetHealthCounts(db),
    sql<{ day: string; succeeded: number; failed: number; bytes: string | null }>`
      SELECT to_char(s.day, 'YYYY-MM-DD') AS day, coalesce(f.good, 0) AS succeeded,
             coalesce(f.failed, 0) AS failed, f.good_bytes AS bytes
        FROM generate_series(${isoDay(from)}::date, ${isoDay(now)}::date, interval '1 day') AS s(day)
        LEFT JOIN fleet_days f ON f.day = s.day::date
       ORDER BY s.day`.execute(db),
    sql<{ succeeded: number; failed: number }>`
      SELECT count(*) FILTER (WHERE state = 'succeeded')::int AS succeeded,
             count(*) FILTER (WHERE state IN ('failed', 'stalled'))::int AS failed
        FROM jobs WHERE created_at >= ${new Date(now.getTime() - 86_400_000)} AND type = 'backup'`.execute(
      db,
    ),
    sql<{ bytes: string | null; n: string }>`SELECT bytes, backups AS n FROM fleet_stored`.execute(db),
    sql<{ n: number }>`SELECT count(*)::int AS n FROM alerts WHERE state = 'firing'`.execute(db),
  ]);
  const by = Object.fromEntries(agents.rows.map((r) => [r.status, r.n])) as Record<string, number>;
  const l = last24h.rows[0] ?? { succeeded: 0, failed: 0 };
  return {
    agents: {
      total: agents.rows.reduce((a, r) => a + r.n, 0),
      online: by.online ?? 0,
      offline: by.offline ?? 0,
      pending: by.pending ?? 0,
      revoked: by.revoked ?? 0,
    },
    targets,
    last24h: {
      succeeded: l.succeeded,
      failed: l.failed,
      successRate: l.succeeded + l.failed ? l.succeeded / (l.succeeded + l.failed) : null,
    },
    backupsStored: Number(stored.rows[0]?.n ?? 0),
    bytesStored: Number(stored.rows[0]?.bytes ?? 0),
    firingAlerts: alerts.rows[0]?.n ?? 0,
    days: days.rows.map((d) => ({ ...d, bytes: Number(d.bytes ?? 0) })),
  };
}

/**
 * Targets by health, one query: overdue (a firing backup_missed alert), failing (the newest
 * finished backup job failed), never backed up (no good backup catalogued), running.
 */
export async function targetHealthCounts(db: Db) {
  const { rows } = await sql<{
    total: number;
    overdue: number;
    failing: number;
    never: number;
    running: number;
  }>`
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
        FROM targets t`.execute(db);
  const t = rows[0] ?? { total: 0, overdue: 0, failing: 0, never: 0, running: 0 };
  return {
    total: t.total,
    overdue: t.overdue,
    failing: t.failing,
    neverBackedUp: t.never,
    running: t.running,
  };
}

const isoDay = (d: Date) => d.toISOString().slice(0, 10);

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
  last_good_id: string | null;
  last_good_at: Date | null;
  last_good_bytes: string | null;
  prev_good_bytes: string | null;
  last_verified_at: Date | null;
  latest_state: string | null;
  overdue: boolean;
  running: boolean;
  day0: Date | string | null;
  good: string | null;
  failed: string | null;
  missed: string | null;
};

/** Every target's health in one row (at most `limit`), with its day strip and next scheduled run. */
export async function targetsOverview(db: Db, now = new Date(), limit = 5000, only?: string) {
  const { rows } = await sql<TargetRow>`
    SELECT t.id, t.name, t.engine, t.agent_id, a.hostname, a.status AS agent_status, s.name AS storage,
           coalesce(t.options->>'physical', 'false') = 'true' AS physical,
           lg.id AS last_good_id, lg.started_at AS last_good_at, lg.size_bytes AS last_good_bytes,
           lg.prev_bytes AS prev_good_bytes,
           (SELECT v.finished_at FROM jobs v WHERE v.target_id = t.id AND v.type = 'verify' AND v.state = 'succeeded'
             ORDER BY v.finished_at DESC LIMIT 1) AS last_verified_at,
           (SELECT j.state FROM jobs j WHERE j.target_id = t.id AND j.type = 'backup'
                                         AND j.state IN ('succeeded', 'failed', 'stalled')
             ORDER BY j.created_at DESC LIMIT 1) AS latest_state,
           EXISTS (SELECT 1 FROM alerts al WHERE al.kind = 'backup_missed' AND al.state = 'firing'
                                             AND al.subject = 'target:' || t.id) AS overdue,
           EXISTS (SELECT 1 FROM jobs r WHERE r.target_id = t.id AND r.type = 'backup'
                                          AND r.state IN ('queued', 'running')) AS running,
           td.day0, td.good::text AS good, td.failed::text AS failed, td.missed::text AS missed
      FROM targets t
      JOIN agents a ON a.id = t.agent_id
      LEFT JOIN storage_profiles s ON s.id = t.storage_id
      LEFT JOIN target_days td ON td.target_id = t.id
      LEFT JOIN LATERAL (SELECT x.id, x.started_at, x.size_bytes,
                                lead(x.size_bytes) OVER (ORDER BY x.started_at DESC) AS prev_bytes
                           FROM (SELECT b.id, b.started_at, b.size_bytes FROM backups b
                                  WHERE b.target_id = t.id AND b.status = 'completed' AND b.deleted_at IS NULL
                                  ORDER BY b.started_at DESC LIMIT 2) x
                          ORDER BY x.started_at DESC LIMIT 1) lg ON true
     ${only ? sql`WHERE t.id = ${only}` : sql``}
     ORDER BY t.name, t.id
     LIMIT ${limit}`.execute(db);
  let sq = db
    .selectFrom('schedules')
    .select(['target_id', 'cron', 'timezone', 'enabled'])
    .where('enabled', '=', true);
  if (only) sq = sq.where('target_id', '=', only);
  const schedules = await sq.execute();
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
    lastGoodId: r.last_good_id,
    lastGoodBytes: r.last_good_bytes === null ? null : Number(r.last_good_bytes),
    /** The good backup before the last one: the size trend. */
    prevGoodBytes: r.prev_good_bytes === null ? null : Number(r.prev_good_bytes),
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
    strip: withToday(stripOf(r, now), r.running),
  }));
}

/** Today's cell says `r` while a backup runs and none has succeeded yet today. */
function withToday(strip: string, running: boolean): DayStrip {
  if (!running || strip.endsWith('g')) return strip;
  return `${strip.slice(0, -1)}r`;
}

/**
 * The strip from a target's day bitmasks (target_days: bit n = n days before day0), oldest
 * day first: a good backup wins over a failure, a failure over a miss.
 */
export function stripOf(
  r: { day0: Date | string | null; good: string | null; failed: string | null; missed: string | null },
  now: Date,
): DayStrip {
  if (!r.day0) return '-'.repeat(STRIP_DAYS);
  const day0 = Date.parse(
    typeof r.day0 === 'string' ? `${r.day0.slice(0, 10)}T00:00:00Z` : isoDayOfLocal(r.day0),
  );
  const today = Date.parse(`${isoDay(now)}T00:00:00Z`);
  const lag = Math.round((day0 - today) / 86_400_000);
  // Each mask in binary once, then read by character: shifting a BigInt per day and mask cost
  // a third of GET /dashboard/targets with 1 000 targets.
  const [good, failed, missed] = [r.good, r.failed, r.missed].map((m) => BigInt(m ?? '0').toString(2)) as [
    string,
    string,
    string,
  ];
  const has = (bits: string, bit: number) =>
    bit < bits.length && bits.charCodeAt(bits.length - 1 - bit) === 49;
  let out = '';
  for (let k = STRIP_DAYS - 1; k >= 0; k--) {
    const bit = lag + k;
    if (bit < 0 || bit > 61) out += '-';
    else out += has(good, bit) ? 'g' : has(failed, bit) ? 'f' : has(missed, bit) ? 'm' : '-';
  }
  return out;
}

/** A DATE column read by node-postgres as a local midnight: its calendar day, as UTC midnight. */
function isoDayOfLocal(d: Date): string {
  const y = d.getFullYear();
  const m = String(d.getMonth() + 1).padStart(2, '0');
  const day = String(d.getDate()).padStart(2, '0');
  return `${y}-${m}-${day}T00:00:00Z`;
}
