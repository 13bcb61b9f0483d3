import { sql } from 'kysely';
import client from 'prom-client';
import type { Db } from '../db/database.js';
import type { FinishedJob } from './finished-job.js';

/**
 * Prometheus metrics (`GET /metrics`). Job outcomes are observed as the agent's
 * events are applied; fleet and per-target gauges are read from the database
 * at scrape time, so they are right after a restart too. The names are the
 * seed's, and deploy/ (Grafana dashboard, alert rules) uses only these.
 */
export const registry = new client.Registry();
client.collectDefaultMetrics({ register: registry, prefix: 'dbbackup_cp_' });

const DURATION_BUCKETS = [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14_400, 28_800];

export const backupDuration = new client.Histogram({
  name: 'dbbackup_backup_duration_seconds',
  help: 'Backup duration from start to commit (or failure), by engine and result',
  labelNames: ['dbtype', 'result'] as const,
  buckets: DURATION_BUCKETS,
  registers: [registry],
});
export const backupSize = new client.Histogram({
  name: 'dbbackup_backup_size_bytes',
  help: 'Stored size of committed backups (compressed and encrypted), by engine',
  labelNames: ['dbtype'] as const,
  buckets: client.exponentialBuckets(1024 * 1024, 4, 12),
  registers: [registry],
});
export const backupRetries = new client.Counter({
  name: 'dbbackup_backup_retry_count',
  help: 'Storage requests retried after a transient error during backups, by engine',
  labelNames: ['dbtype'] as const,
  registers: [registry],
});
export const uploadDuration = new client.Histogram({
  name: 'dbbackup_upload_duration_seconds',
  help: 'Time to stream a backup into storage (the upload runs alongside the dump), by provider',
  labelNames: ['provider'] as const,
  buckets: DURATION_BUCKETS,
  registers: [registry],
});
export const restoreDuration = new client.Histogram({
  name: 'dbbackup_restore_duration_seconds',
  help: 'Restore duration, by engine and result',
  labelNames: ['dbtype', 'result'] as const,
  buckets: DURATION_BUCKETS,
  registers: [registry],
});
export const drillDuration = new client.Histogram({
  name: 'dbbackup_drill_duration_seconds',
  help: 'Restore drill duration (scratch restore, check and removal), by engine and result',
  labelNames: ['dbtype', 'result'] as const,
  buckets: DURATION_BUCKETS,
  registers: [registry],
});
export const dispatchLatency = new client.Histogram({
  name: 'dbbackup_command_dispatch_latency_seconds',
  help: 'From a command being created to the agent acknowledging it',
  buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15, 60, 300, 3600],
  registers: [registry],
});

let metricsDb: Db | undefined;

new client.Gauge({
  name: 'dbbackup_agents',
  help: 'Agents by status',
  labelNames: ['status'] as const,
  registers: [registry],
  async collect() {
    if (!metricsDb) return;
    const rows = await metricsDb
      .selectFrom('agents')
      .select(['status', sql<number>`count(*)::int`.as('n')])
      .groupBy('status')
      .execute();
    this.reset();
    for (const s of ['pending', 'online', 'offline', 'revoked']) {
      this.set({ status: s }, rows.find((r) => r.status === s)?.n ?? 0);
    }
  },
});

const lastSuccessQuery = (db: Db) =>
  db
    .selectFrom('targets as t')
    .leftJoin('backups as b', (j) => j.onRef('b.target_id', '=', 't.id').on('b.deleted_at', 'is', null))
    .select(['t.id', 't.name', 't.engine', sql<Date | null>`max(b.finished_at)`.as('last')])
    .groupBy(['t.id', 't.name', 't.engine'])
    .execute();

/** The two per-target gauges are collected together in one scrape: they share one query. */
let lastSuccessInFlight: ReturnType<typeof lastSuccessQuery> | undefined;
function lastSuccessRows(db: Db) {
  lastSuccessInFlight ??= lastSuccessQuery(db).finally(() => {
    lastSuccessInFlight = undefined;
  });
  return lastSuccessInFlight;
}

new client.Gauge({
  name: 'dbbackup_last_success_timestamp_seconds',
  help: 'Unix time of the newest committed backup of each target (absent: none yet)',
  labelNames: ['target_id', 'target', 'dbtype'] as const,
  registers: [registry],
  async collect() {
    if (!metricsDb) return;
    this.reset();
    for (const r of await lastSuccessRows(metricsDb)) {
      if (r.last)
        this.set({ target_id: r.id, target: r.name, dbtype: r.engine }, new Date(r.last).getTime() / 1000);
    }
  },
});

new client.Gauge({
  name: 'dbbackup_rpo_seconds',
  help: 'Seconds since the newest committed backup of each target: the data that would be lost now',
  labelNames: ['target_id', 'target', 'dbtype'] as const,
  registers: [registry],
  async collect() {
    if (!metricsDb) return;
    this.reset();
    const now = Date.now();
    for (const r of await lastSuccessRows(metricsDb)) {
      if (r.last)
        this.set(
          { target_id: r.id, target: r.name, dbtype: r.engine },
          (now - new Date(r.last).getTime()) / 1000,
        );
    }
  },
});

export function bindMetricsDb(db: Db) {
  metricsDb = db;
}

/** The database gauges read at scrape time (undefined until the server binds it). */
export const boundMetricsDb = () => metricsDb;

/** Observe a finished backup or restore job (job-finished.ts calls it where its terminal state is applied). */
export function observeJobFinished(job: FinishedJob) {
  if (!job.finished_at) return;
  const start = job.started_at ?? job.created_at;
  const seconds = Math.max(0, (new Date(job.finished_at).getTime() - new Date(start).getTime()) / 1000);
  const result = job.state === 'succeeded' ? 'success' : 'failure';
  const dbtype = job.targetEngine ?? job.backupEngine ?? 'unknown';
  if (job.type === 'restore') {
    restoreDuration.observe({ dbtype, result }, seconds);
    return;
  }
  if (job.type === 'drill') {
    drillDuration.observe({ dbtype, result }, seconds);
    return;
  }
  if (job.type !== 'backup') return;
  backupDuration.observe({ dbtype, result }, seconds);
  // A backup job's result is its catalogue summary (catalogue.ts recordBackup).
  const r = job.result as { sizeBytes?: number; uploadRetries?: number } | null;
  if (r?.uploadRetries) backupRetries.inc({ dbtype }, r.uploadRetries);
  if (result !== 'success') return;
  if (typeof r?.sizeBytes === 'number') backupSize.observe({ dbtype }, r.sizeBytes);
  uploadDuration.observe({ provider: job.storageKind ?? 'unknown' }, seconds);
}
