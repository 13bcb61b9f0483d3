import type { Logger } from '@dbbackup/logger';
import { StorageSpec, type TargetSpec } from '@dbbackup/proto';
import type { ScratchRecord } from '../jobs/drill-scratch.js';
import { removeUncommitted } from '../jobs/orphan-sweep.js';
import { openStore } from '../storage/open-store.js';
import type { AgentStore } from '../store/agent-store.js';

/**
 * After a crash: abort the uploads of jobs that were interrupted, so no multipart upload is
 * left behind, and remove a data object whose job did not record its success (with its commit
 * marker, if that was written): the job is reported failed, so no backup of it may remain.
 * What cannot be cleaned now is tried again at the next start.
 */
export async function recoverUploads(store: AgentStore, log: Logger) {
  for (const u of await store.unfinishedUploads()) {
    try {
      const storage = StorageSpec.parse(JSON.parse(u.storage));
      const n = await (await openStore(storage)).cleanupUnfinished(u.object_key);
      const removed = await removeUncommitted(storage, u.object_key);
      log.warn(
        { jobId: u.job_id, key: u.object_key, aborted: n, removedObject: removed },
        'cleaned up after an interrupted job: unfinished upload aborted, uncommitted object removed',
      );
      if (removed)
        await store.appendEvent({
          type: 'log',
          level: 'warn',
          message: `removed ${u.object_key}: its job was interrupted before the backup was committed and reported`,
        });
      await store.clearUpload(u.job_id);
    } catch (err) {
      log.error({ err, jobId: u.job_id }, 'could not abort an unfinished upload; will retry at next start');
    }
  }
}

/** After a crash: remove the scratch destinations of drills that were interrupted (their record says what). */
export async function recoverScratch(store: AgentStore, log: Logger) {
  const records = await store.metaWithPrefix('scratch:');
  if (!records.length) return;
  // The database drivers are loaded only when there is something to remove (an idle agent stays small).
  const { removeScratch } = await import('../jobs/drill-scratch.js');
  for (const { key, value } of records) {
    try {
      const { target, scratch } = JSON.parse(value) as { target: TargetSpec; scratch: ScratchRecord };
      await removeScratch(target, scratch);
      log.warn(
        { key, database: scratch.database },
        'removed the scratch destination of an interrupted drill',
      );
      await store.deleteMeta(key);
    } catch (err) {
      log.error({ err, key }, 'could not remove a drill scratch destination; will retry at next start');
    }
  }
}
