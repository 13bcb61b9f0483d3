import { sql } from 'kysely';
import type { Db } from '../db/database.js';

type Row = {
  id: string;
  name: string;
  engine: string;
  last_good_backup_at: Date | null;
  last_drill_state: string | null;
  last_drill_at: Date | null;
  last_drill_error: { code?: string; message?: string } | null;
  last_success_at: Date | null;
  rto: number | null;
  data_age: number | null;
  max_restore_seconds: number | null;
  max_data_age_seconds: number | null;
};

/**
 * The recoverability report: for every target, its newest good backup, its newest drill
 * and newest successful drill, and the restore time and data age that drill measured,
 * against the target's objectives. One query (the drill index serves the two laterals).
 */
export async function recoverabilityReport(db: Db) {
  const r = await sql<Row>`
    SELECT t.id, t.name, t.engine,
           (SELECT max(b.finished_at) FROM backups b
             WHERE b.target_id = t.id AND b.status = 'completed' AND b.deleted_at IS NULL) AS last_good_backup_at,
           ld.state AS last_drill_state, ld.finished_at AS last_drill_at, ld.error AS last_drill_error,
           ls.finished_at AS last_success_at,
           (ls.result->>'rtoSeconds')::float8 AS rto, (ls.result->>'dataAgeSeconds')::float8 AS data_age,
           p.max_restore_seconds, p.max_data_age_seconds
      FROM targets t
      LEFT JOIN LATERAL (SELECT j.state, j.finished_at, j.error FROM jobs j
                          WHERE j.target_id = t.id AND j.type = 'drill' AND j.finished_at IS NOT NULL
                          ORDER BY j.created_at DESC LIMIT 1) ld ON true
      LEFT JOIN LATERAL (SELECT j.finished_at, j.result FROM jobs j
                          WHERE j.target_id = t.id AND j.type = 'drill' AND j.state = 'succeeded'
                          ORDER BY j.created_at DESC LIMIT 1) ls ON true
      LEFT JOIN drill_policies p ON p.target_id = t.id
     ORDER BY t.name, t.id`.execute(db);
  return r.rows.map((x) => ({
    targetId: x.id,
    target: x.name,
    engine: x.engine,
    lastGoodBackupAt: x.last_good_backup_at,
    lastDrill: x.last_drill_at
      ? { at: x.last_drill_at, state: x.last_drill_state, error: x.last_drill_error?.message ?? null }
      : null,
    lastSuccessfulDrillAt: x.last_success_at,
    measuredRtoSeconds: x.rto,
    measuredRpoSeconds: x.data_age,
    rtoObjectiveSeconds: x.max_restore_seconds,
    rpoObjectiveSeconds: x.max_data_age_seconds,
    /** The newest drill passed. */
    proven: x.last_drill_state === 'succeeded',
    rtoMet: x.rto === null ? null : x.max_restore_seconds === null ? true : x.rto <= x.max_restore_seconds,
    rpoMet:
      x.data_age === null
        ? null
        : x.max_data_age_seconds === null
          ? true
          : x.data_age <= x.max_data_age_seconds,
  }));
}
