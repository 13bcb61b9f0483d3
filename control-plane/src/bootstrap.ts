import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '@dbbackup/logger';
import { sql } from 'kysely';
import { type Db, json } from './db/database.js';
import { createApiToken } from './http/auth.js';

/** What a control plane sets up in its database on first start, and reads on every start. */

/** One value the database holds sealed with the master key, if any (the KEK's private half, or storage credentials). */
export async function sealedSample(db: Db): Promise<string | undefined> {
  const k = await db
    .selectFrom('keys')
    .select('private_enc')
    .where('private_enc', 'is not', null)
    .limit(1)
    .executeTakeFirst();
  if (k?.private_enc) return k.private_enc;
  const s = await db
    .selectFrom('storage_profiles')
    .select('secret_enc')
    .where('secret_enc', 'is not', null)
    .limit(1)
    .executeTakeFirst();
  return s?.secret_enc ?? undefined;
}

export async function ensureClusterId(db: Db): Promise<string> {
  await db
    .insertInto('settings')
    .values({ key: 'cluster_id', value: json(randomUUID()) })
    .onConflict((oc) => oc.doNothing())
    .execute();
  const row = await db
    .selectFrom('settings')
    .select('value')
    .where('key', '=', 'cluster_id')
    .executeTakeFirstOrThrow();
  return String(row.value);
}

/**
 * On first start (no admin token exists) create one, print it once and write it
 * to a 0600 file in the data directory. An advisory lock keeps two replicas
 * starting together from creating two.
 */
export async function bootstrapAdminToken(db: Db, dataDir: string, log: Logger) {
  await db.connection().execute(async (conn) => {
    await sql`SELECT pg_advisory_lock(727001)`.execute(conn);
    try {
      const existing = await conn
        .selectFrom('api_tokens')
        .select('id')
        .where('role', '=', 'admin')
        .where('revoked_at', 'is', null)
        .executeTakeFirst();
      if (existing) return;
      const t = await createApiToken(conn as Db, 'initial-admin', 'admin');
      const file = path.join(dataDir, 'admin-token');
      await writeFile(file, `${t.token}\n`, { mode: 0o600 });
      await chmod(file, 0o600);
      // Printed once, on purpose and outside the JSON log (which would redact it).
      process.stdout.write(
        `\n  dbbackup: initial admin API token (shown once; also saved to ${file}):\n\n    ${t.token}\n\n`,
      );
      log.info({ file, tokenId: t.id }, 'initial admin token created');
    } finally {
      await sql`SELECT pg_advisory_unlock(727001)`.execute(conn);
    }
  });
  if (!existsSync(dataDir)) throw new Error(`data directory ${dataDir} vanished`);
}
