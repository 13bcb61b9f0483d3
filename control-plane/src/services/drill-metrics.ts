import { sql } from 'kysely';
import client from 'prom-client';
import type { Db } from '../db/database.js';
import { boundMetricsDb, registry } from './metrics.js';

/** Each target's newest successful drill: when, and its measured restore time. One query per scrape. */
const lastDrillQuery = (db: Db) =>
  sql<{ id: string; name: string; engine: string; finished_at: Date; rto: number | null }>`
    SELECT DISTINCT ON (j.target_id) t.id, t.name, t.engine, j.finished_at,
           (j.result->>'rtoSeconds')::float8 AS rto
      FROM jobs j JOIN targets t ON t.id = j.target_id
     WHERE j.type = 'drill' AND j.state = 'succeeded'
     ORDER BY j.target_id, j.finished_at DESC`.execute(db);

let inFlight: ReturnType<typeof lastDrillQuery> | undefined;
function lastDrills(db: Db) {
  inFlight ??= lastDrillQuery(db).finally(() => {
    inFlight = undefined;
  });
  return inFlight;
}

let registered = false;

/** A per-target drill gauge, collected from the newest successful drills (one shared query a scrape). */
function drillGauge(
  name: string,
  help: string,
  value: (r: { finished_at: Date; rto: number | null }) => number | null,
) {
  return new client.Gauge({
    name,
    help,
    labelNames: ['target_id', 'target', 'dbtype'] as const,
    registers: [registry],
    async collect() {
      const db = boundMetricsDb();
      if (!db) return;
      this.reset();
      for (const r of (await lastDrills(db)).rows) {
        const v = value(r);
        if (v !== null) this.set({ target_id: r.id, target: r.name, dbtype: r.engine }, v);
      }
    },
  });
}

/** `dbbackup_last_drill_success_timestamp` and `dbbackup_restore_rto_seconds`, per target. */
export function registerDrillMetrics() {
  if (registered) return;
  registered = true;
  drillGauge(
    'dbbackup_last_drill_success_timestamp',
    'Unix time of the newest successful restore drill of each target (absent: none yet)',
    (r) => new Date(r.finished_at).getTime() / 1000,
  );
  drillGauge(
    'dbbackup_restore_rto_seconds',
    'Restore time measured by the newest successful drill of each target (first byte fetched to check passed)',
    (r) => r.rto,
  );
}
