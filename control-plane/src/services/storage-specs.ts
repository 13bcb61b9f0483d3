import { StorageSpec } from '@dbbackup/proto';
import type { SecretBox } from '../crypto/secret-box.js';
import type { Db } from '../db/database.js';
import { notFound, ProblemError } from '../problem.js';

async function storageRow(db: Db, storageId: string) {
  const row = await db
    .selectFrom('storage_profiles')
    .selectAll()
    .where('id', '=', storageId)
    .executeTakeFirst();
  if (!row) throw notFound('storage profile');
  return row;
}

/** The storage profile as the agent needs it: with its credentials, unsealed. Never returned by the API. */
export async function storageSpecFor(db: Db, box: SecretBox, storageId: string): Promise<StorageSpec> {
  const row = await storageRow(db, storageId);
  const credentials = row.secret_enc
    ? (JSON.parse(box.open(row.secret_enc)) as { accessKeyId: string; secretAccessKey: string })
    : undefined;
  return StorageSpec.parse({
    ...row.config,
    kind: row.kind,
    id: row.id,
    ...(credentials ? { credentials } : {}),
  });
}

/**
 * The storage profile without its credentials: what a command row may hold. The sealed
 * credentials are not opened for it; they are put in once, when the command is sent.
 */
export async function storageRefFor(db: Db, storageId: string): Promise<StorageSpec> {
  const row = await storageRow(db, storageId);
  return StorageSpec.parse({ ...row.config, kind: row.kind, id: row.id });
}

/** A storage id that names no profile is a 422 (absent means the target's own storage). */
export async function checkStorage(db: Db, storageId: string | undefined) {
  if (!storageId) return;
  const s = await db
    .selectFrom('storage_profiles')
    .select('id')
    .where('id', '=', storageId)
    .executeTakeFirst();
  if (!s)
    throw new ProblemError(422, 'Unprocessable Content', 'storageId names no storage profile', {
      type: 'validation',
    });
}
