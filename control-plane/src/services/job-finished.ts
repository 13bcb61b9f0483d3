import type { Db } from '../db/database.js';
import { drillFinished } from './drill-alerts.js';
import { loadFinishedJob } from './finished-job.js';
import { observeJobFinished } from './metrics.js';
import { notifyJobFinished } from './notifications.js';
import { walVerifyFinished } from './wal-gaps.js';

/** A job reached a terminal state (inside the transaction that applied it): metrics, notifications, drill alerts. */
export async function jobFinished(tx: Db, jobId: string) {
  const job = await loadFinishedJob(tx, jobId);
  if (!job?.finished_at) return;
  observeJobFinished(job);
  await notifyJobFinished(tx, job);
  if (job.type === 'drill') await drillFinished(tx, job);
  if (job.type === 'wal_verify') await walVerifyFinished(tx, job);
}
