import { createPublicKey, type JsonWebKey, verify } from 'node:crypto';
import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import {
  BackupMeta,
  jweProtectedHeader,
  keyBindingProblem,
  metaSigningInput,
  type StorageSpec,
  summariseMeta,
} from '@dbbackup/proto';
import { type Db, json } from '../db/database.js';

/** A meta.json larger than this is not a commit marker of ours (25 000 tables take about 2 MB). */
const META_MAX_BYTES = 32 * 1024 * 1024;

/**
 * Why one meta.json must not enter the catalogue, or undefined when it may: it
 * parses; its agent exists and signed it (Ed25519 over metaSigningInput); its
 * target is that agent's; its data key is bound to this backup, agent and target
 * and wrapped to a key-encryption key this control plane holds; and it sits
 * beside its own data object.
 */
export async function rescanProblem(db: Db, key: string, raw: unknown): Promise<string | undefined> {
  const parsed = BackupMeta.safeParse(raw);
  if (!parsed.success) return 'not a backup meta.json';
  const m = parsed.data;
  if (key !== `${m.objectKey}.meta.json`) return `does not sit beside its data object ${m.objectKey}`;
  const agent = await db
    .selectFrom('agents')
    .select(['id', 'signing_jwk'])
    .where('id', '=', m.agentId)
    .executeTakeFirst();
  if (!agent) return `agent ${m.agentId} is not enrolled here`;
  if (!m.signature)
    return 'not signed by its agent (written before meta.json was signed; restore it with `dbbackup-agent decrypt`)';
  try {
    const pub = createPublicKey({ key: agent.signing_jwk as JsonWebKey, format: 'jwk' });
    if (!verify(null, metaSigningInput(m), pub, Buffer.from(m.signature, 'base64url')))
      return `the signature is not agent ${m.agentId}'s: the meta.json was altered or forged`;
  } catch {
    return 'the signature cannot be checked';
  }
  const target = await db
    .selectFrom('targets')
    .select(['id', 'agent_id'])
    .where('id', '=', m.targetId)
    .executeTakeFirst();
  if (!target || target.agent_id !== m.agentId)
    return `target ${m.targetId} is not a target of agent ${m.agentId}`;
  const header = jweProtectedHeader(m.wrappedKey);
  const binding = keyBindingProblem(header, { bid: m.backupId, aid: m.agentId, tid: m.targetId });
  if (binding) return binding;
  const kek = await db.selectFrom('keys').select('private_enc').where('kid', '=', m.kekId).executeTakeFirst();
  if (!kek?.private_enc || header?.kid !== m.kekId)
    return `wrapped to a key this control plane does not hold (${m.kekId})`;
  return undefined;
}

/**
 * Rebuild catalogue entries from the bucket alone: every `<name>.meta.json` is a
 * committed backup (invariant 2), imported only if it verifies (rescanProblem).
 * Entries already known are left as they are; one bad file is reported and
 * skipped. Returns how many commit markers were found and added, and what was
 * skipped with the reason.
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
  const skipped: { key: string; reason: string }[] = [];
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
        const key = o.Key;
        try {
          const outcome = await importMeta(db, client, spec, key, o.Size ?? 0);
          if (typeof outcome === 'number') added += outcome;
          else skipped.push({ key, reason: outcome.skipped });
        } catch (err) {
          skipped.push({ key, reason: `could not be read: ${(err as Error).message}`.slice(0, 300) });
        }
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  } finally {
    client.destroy();
  }
  return { found, added, skipped };
}

/** Read one meta.json and catalogue it if it verifies: the number of rows added, or why it was skipped. */
async function importMeta(
  db: Db,
  client: S3Client,
  spec: Extract<StorageSpec, { kind: 's3' }>,
  key: string,
  size: number,
): Promise<number | { skipped: string }> {
  if (size > META_MAX_BYTES) return { skipped: `larger than ${META_MAX_BYTES} bytes` };
  const body = await client.send(new GetObjectCommand({ Bucket: spec.bucket, Key: key }));
  const text = await body.Body!.transformToString();
  if (text.length > META_MAX_BYTES) return { skipped: `larger than ${META_MAX_BYTES} bytes` };
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { skipped: 'not JSON' };
  }
  const problem = await rescanProblem(db, key, raw);
  if (problem) return { skipped: problem };
  const m = BackupMeta.parse(raw);
  const r = await db
    .insertInto('backups')
    .values({
      id: m.backupId,
      target_id: m.targetId,
      agent_id: m.agentId,
      storage_id: spec.id,
      object_key: m.objectKey,
      meta_key: key,
      filename: m.filename,
      size_bytes: m.sizeBytes,
      sha256: m.sha256,
      status: m.status,
      started_at: m.startTime,
      finished_at: m.endTime,
      meta: json(summariseMeta(m)),
      key_bound: true,
      meta_kid: m.kekId,
    })
    .onConflict((oc) => oc.doNothing())
    .executeTakeFirst();
  return Number(r.numInsertedOrUpdatedRows ?? 0);
}
