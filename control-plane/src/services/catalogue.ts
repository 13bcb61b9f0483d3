import type { BackupResult } from '@dbbackup/proto';
import { type Db, json } from '../db/database.js';

/** Put a committed backup into the catalogue (once) and give its job a summary as result. */
export async function recordBackup(
  tx: Db,
  agentId: string,
  job: { id: string; target_id: string | null },
  storageId: string,
  r: BackupResult,
  extra: { scheduleId?: string | null; runWhileDisconnected?: boolean } = {},
) {
  await tx
    .insertInto('backups')
    .values({
      id: r.meta.backupId,
      target_id: job.target_id,
      agent_id: agentId,
      storage_id: storageId,
      object_key: r.meta.objectKey,
      meta_key: r.metaKey,
      filename: r.meta.filename,
      size_bytes: r.meta.sizeBytes,
      sha256: r.meta.sha256,
      status: r.meta.status,
      started_at: r.meta.startTime,
      finished_at: r.meta.endTime,
      meta: json(r.meta),
      schedule_id: extra.scheduleId ?? null,
      run_while_disconnected: extra.runWhileDisconnected ?? false,
      key_bound: true,
      meta_kid: r.meta.kekId,
    })
    .onConflict((oc) => oc.doNothing())
    .execute();
  // The job's result keeps the catalogue entry, not the wrapped key a second time.
  await tx
    .updateTable('jobs')
    .set({
      result: json({
        backupId: r.meta.backupId,
        objectKey: r.meta.objectKey,
        sizeBytes: r.meta.sizeBytes,
        sha256: r.meta.sha256,
        uploadRetries: r.uploadRetries ?? 0,
      }),
    })
    .where('id', '=', job.id)
    .execute();
}
