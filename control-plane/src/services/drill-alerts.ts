import type { Db } from '../db/database.js';
import { fireAlert, resolveAlert } from './alerts.js';
import type { FinishedJob } from './finished-job.js';

/** What a drill result (the job's result) holds, as the agent reports it. */
export interface DrillResult {
  backupId: string;
  rtoSeconds: number;
  dataAgeSeconds: number;
  bytes: number;
  tablesChecked: number;
  tablesTotal: number;
  tables: { table: string; expected: number; found: number | null; exact: boolean; ok: boolean }[];
}

/**
 * A drill job ended (inside the transaction that applied it): `drill_failed`, `rto_exceeded`
 * and `rpo_exceeded` fire against the limits it was started with, and a good drill resolves them.
 */
export async function drillFinished(tx: Db, job: FinishedJob) {
  if (!job.target_id) return;
  const subject = `target:${job.target_id}`;
  const name = job.target ?? job.target_id;
  const base = { subject, targetId: job.target_id, jobId: job.id };
  const limits = job.params as { maxRestoreSeconds?: number | null; maxDataAgeSeconds?: number | null };
  if (job.state !== 'succeeded') {
    const error = job.error as { code?: string; message?: string } | null;
    await fireAlert(tx, {
      kind: 'drill_failed',
      ...base,
      message: `the restore drill of ${name} failed: ${error?.message ?? job.state}`,
      details: { code: error?.code ?? job.state },
    });
    return;
  }
  await resolveAlert(tx, 'drill_failed', subject);
  const r = job.result as DrillResult;
  if (limits.maxRestoreSeconds && r.rtoSeconds > limits.maxRestoreSeconds)
    await fireAlert(tx, {
      kind: 'rto_exceeded',
      ...base,
      message: `restoring ${name} took ${r.rtoSeconds.toFixed(1)} s, more than its ${limits.maxRestoreSeconds} s objective`,
      details: { rtoSeconds: r.rtoSeconds, maxRestoreSeconds: limits.maxRestoreSeconds },
    });
  else await resolveAlert(tx, 'rto_exceeded', subject);
  if (limits.maxDataAgeSeconds && r.dataAgeSeconds > limits.maxDataAgeSeconds)
    await fireAlert(tx, {
      kind: 'rpo_exceeded',
      ...base,
      message: `the newest good backup of ${name} was ${Math.round(r.dataAgeSeconds)} s old when drilled, more than its ${limits.maxDataAgeSeconds} s objective`,
      details: { dataAgeSeconds: r.dataAgeSeconds, maxDataAgeSeconds: limits.maxDataAgeSeconds },
    });
  else await resolveAlert(tx, 'rpo_exceeded', subject);
}
