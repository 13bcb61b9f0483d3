import { sql } from 'kysely';
import client from 'prom-client';
import type { Db } from '../db/database.js';
import { boundMetricsDb, registry } from './metrics.js';

/**
 * Per physical target: the newest archived WAL file (when it was complete, and its
 * segment number) and the archiver's last report (spool bytes). One query per scrape.
 */
const walQuery = (db: Db) =>
  sql<{
    id: string;
    name: string;
    completed: Date | null;
    segno: number | null;
    spool: number | null;
    retained: number | null;
  }>`
    SELECT t.id, t.name,
           (SELECT max(completed_at) FROM wal_files w WHERE w.target_id = t.id AND w.deleted_at IS NULL) AS completed,
           (SELECT max(segno) FROM wal_files w WHERE w.target_id = t.id AND w.deleted_at IS NULL) AS segno,
           s.spool_bytes AS spool, s.slot_retained_bytes AS retained
      FROM targets t LEFT JOIN wal_status s ON s.target_id = t.id
     WHERE (t.options->>'physical')::boolean IS TRUE`.execute(db);

let inFlight: ReturnType<typeof walQuery> | undefined;
function walRows(db: Db) {
  inFlight ??= walQuery(db).finally(() => {
    inFlight = undefined;
  });
  return inFlight;
}

let registered = false;

function walGauge(
  name: string,
  help: string,
  value: (r: Awaited<ReturnType<typeof walQuery>>['rows'][number]) => number | null,
) {
  return new client.Gauge({
    name,
    help,
    labelNames: ['target_id', 'target'] as const,
    registers: [registry],
    async collect() {
      const db = boundMetricsDb();
      if (!db) return;
      this.reset();
      for (const r of (await walRows(db)).rows) {
        const v = value(r);
        if (v !== null && Number.isFinite(v)) this.set({ target_id: r.id, target: r.name }, v);
      }
    },
  });
}

/** dbbackup_wal_archive_lag_seconds, dbbackup_wal_last_archived_segment, dbbackup_wal_spool_bytes, dbbackup_wal_slot_retained_bytes. */
export function registerWalMetrics() {
  if (registered) return;
  registered = true;
  walGauge(
    'dbbackup_wal_archive_lag_seconds',
    'Seconds since the newest archived WAL file of each physical target was complete: how old the newest restorable point is',
    (r) => (r.completed ? (Date.now() - new Date(r.completed).getTime()) / 1000 : null),
  );
  walGauge('dbbackup_wal_last_archived_segment', 'Segment number of the newest archived WAL file', (r) =>
    r.segno === null ? null : Number(r.segno),
  );
  walGauge('dbbackup_wal_spool_bytes', 'Completed WAL waiting on the agent to be uploaded (bytes)', (r) =>
    r.spool === null ? null : Number(r.spool),
  );
  walGauge(
    'dbbackup_wal_slot_retained_bytes',
    "WAL the server keeps for the archiver's replication slot (bytes)",
    (r) => (r.retained === null ? null : Number(r.retained)),
  );
}
