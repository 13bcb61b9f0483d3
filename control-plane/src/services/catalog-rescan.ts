import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { BackupMeta, type StorageSpec } from '@dbbackup/proto';
import { type Db, json } from '../db/database.js';

/**
 * Rebuild catalogue entries from the bucket alone: every `<name>.meta.json` is a
 * committed backup (invariant 2). Entries already known are left as they are.
 * Returns how many commit markers were found and how many entries were added.
 */
export async function rescanS3(db: Db, spec: Extract<StorageSpec, { kind: 's3' }>) {
  const client = new S3Client({
    region: spec.region,
    ...(spec.endpoint ? { endpoint: spec.endpoint } : {}),
    forcePathStyle: spec.forcePathStyle,
    ...(spec.credentials ? { credentials: spec.credentials } : {}),
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  let found = 0;
  let added = 0;
  const skipped: string[] = [];
  let token: string | undefined;
  try {
    do {
      const page = await client.send(
        new ListObjectsV2Command({
          Bucket: spec.bucket,
          Prefix: spec.prefix || undefined,
          ContinuationToken: token,
        }),
      );
      for (const o of page.Contents ?? []) {
        if (!o.Key?.endsWith('.meta.json')) continue;
        found++;
        const body = await client.send(new GetObjectCommand({ Bucket: spec.bucket, Key: o.Key }));
        const parsed = BackupMeta.safeParse(JSON.parse(await body.Body!.transformToString()));
        if (!parsed.success) {
          skipped.push(o.Key);
          continue;
        }
        const m = parsed.data;
        const agent = await db
          .selectFrom('agents')
          .select('id')
          .where('id', '=', m.agentId)
          .executeTakeFirst();
        const target = await db
          .selectFrom('targets')
          .select('id')
          .where('id', '=', m.targetId)
          .executeTakeFirst();
        if (!agent) {
          skipped.push(o.Key);
          continue;
        }
        const r = await db
          .insertInto('backups')
          .values({
            id: m.backupId,
            target_id: target?.id ?? null,
            agent_id: m.agentId,
            storage_id: spec.id,
            object_key: m.objectKey,
            meta_key: o.Key,
            filename: m.filename,
            size_bytes: m.sizeBytes,
            sha256: m.sha256,
            status: m.status,
            started_at: m.startTime,
            finished_at: m.endTime,
            meta: json(m),
          })
          .onConflict((oc) => oc.doNothing())
          .executeTakeFirst();
        added += Number(r.numInsertedOrUpdatedRows ?? 0);
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  } finally {
    client.destroy();
  }
  return { found, added, skipped };
}
