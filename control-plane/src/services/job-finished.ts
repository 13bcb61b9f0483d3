import type { Db } from '../db/database.js';
import { loadFinishedJob } from './finished-job.js';
import { observeJobFinished } from './metrics.js';
import { notifyJobFinished } from './notifications.js';

/** A job reached a terminal state (inside the transaction that applied it): metrics and notifications. */
export async function jobFinished(tx: Db, jobId: string) {
  const job = await loadFinishedJob(tx, jobId);
  if (!job?.finished_at) return;
  observeJobFinished(job);
  await notifyJobFinished(tx, job);
}
