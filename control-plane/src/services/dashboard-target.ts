import { sql } from 'kysely';
import type { Db } from '../db/database.js';
import { notFound } from '../problem.js';
import { targetHealth } from './alerts.js';
import { targetsOverview } from './dashboard.js';

/** Rows of each list on a database's page: the newest first, a fixed bound whatever the catalogue holds. */
export const DETAIL_BACKUPS = 50;
export const DETAIL_RESTORES = 20;

type BackupRow = {
  id: string;
  status: string;
  started_at: Date;
  finished_at: Date | null;
  size_bytes: string | null;
  dump_bytes: string | null;
  duration_ms: string | null;
  storage: string | null;
  job_id: string | null;
  verify_state: string | null;
  verified_at: Date | null;
  tables: { table: string }[] | null;
  physical: boolean;
};

type RestoreRow = {
  id: string;
  type: string;
  state: string;
  backup_id: string | null;
  params: Record<string, unknown>;
  error: { message?: string } | null;
  created_at: Date;
  finished_at: Date | null;
  destination: string | null;
};

const iso = (d: Date | null) => (d ? new Date(d).toISOString() : null);
const num = (v: string | null) => (v === null ? null : Number(v));

/**
 * Everything a database's page shows, in a fixed number of indexed queries: its row of the
 * databases table, its health (RPO, next run, firing alerts), its newest backups with the
 * job that made each and its newest verify, and its restore history.
 */
export async function targetDetail(db: Db, id: string, now = new Date()) {
  const [row] = await targetsOverview(db, now, 1, id);
  if (!row) throw notFound('target');
  const [health, alerts, backups, restores] = await Promise.all([
    targetHealth(db, id, now),
    db
      .selectFrom('alerts')
      .select(['kind', 'message', 'fired_at'])
      .where('target_id', '=', id)
      .where('state', '=', 'firing')
      .orderBy('fired_at', 'desc')
      .execute(),
    sql<BackupRow>`
      SELECT b.id, b.status, b.started_at, b.finished_at, b.size_bytes,
             b.meta->>'dumpBytes' AS dump_bytes, b.meta->>'durationMs' AS duration_ms, s.name AS storage,
             (SELECT j.id FROM jobs j WHERE j.backup_id = b.id AND j.type = 'backup' LIMIT 1) AS job_id,
             v.state AS verify_state, v.finished_at AS verified_at,
             CASE WHEN jsonb_typeof(b.meta->'tables') = 'array' THEN b.meta->'tables' END AS tables,
             coalesce(b.meta->'engineMeta'->>'kind', '') = 'physical' AS physical
        FROM backups b
        LEFT JOIN storage_profiles s ON s.id = b.storage_id
        LEFT JOIN LATERAL (SELECT vj.state, vj.finished_at FROM jobs vj
                            WHERE vj.backup_id = b.id AND vj.type = 'verify' AND vj.state IN ('succeeded', 'failed')
                            ORDER BY vj.created_at DESC LIMIT 1) v ON true
       WHERE b.target_id = ${id} AND b.deleted_at IS NULL
       ORDER BY b.started_at DESC
       LIMIT ${DETAIL_BACKUPS}`.execute(db),
    sql<RestoreRow>`
      SELECT j.id, j.type, j.state, j.backup_id, j.params, j.error, j.created_at, j.finished_at,
             dt.name AS destination
        FROM jobs j
        LEFT JOIN targets dt ON dt.id = j.target_id
       WHERE j.id IN (SELECT r.id FROM jobs r WHERE r.target_id = ${id} AND r.type IN ('restore', 'pitr_restore')
                      UNION
                      SELECT r.id FROM backups b JOIN jobs r ON r.backup_id = b.id
                       WHERE b.target_id = ${id} AND r.type IN ('restore', 'pitr_restore'))
       ORDER BY j.created_at DESC
       LIMIT ${DETAIL_RESTORES}`.execute(db),
  ]);
  return {
    target: row,
    health: {
      ...health,
      alerts: alerts.map((a) => ({ kind: a.kind, message: a.message, firedAt: iso(a.fired_at) })),
    },
    backups: backups.rows.map((b) => ({
      id: b.id,
      status: b.status,
      startedAt: iso(b.started_at),
      finishedAt: iso(b.finished_at),
      sizeBytes: num(b.size_bytes),
      dumpBytes: num(b.dump_bytes),
      durationMs: num(b.duration_ms),
      storage: b.storage,
      jobId: b.job_id,
      verified: b.verify_state === 'succeeded' ? 'passed' : b.verify_state === 'failed' ? 'failed' : null,
      verifiedAt: iso(b.verified_at),
      physical: b.physical,
      tables: (b.tables ?? []).map((t) => t.table).slice(0, 1000),
    })),
    restores: restores.rows.map((r) => ({
      jobId: r.id,
      type: r.type,
      state: r.state,
      backupId: r.backup_id,
      destination: r.destination,
      database: typeof r.params.database === 'string' ? r.params.database : null,
      conflict: typeof r.params.conflict === 'string' ? r.params.conflict : null,
      error: r.error?.message ?? null,
      createdAt: iso(r.created_at),
      finishedAt: iso(r.finished_at),
    })),
  };
}
