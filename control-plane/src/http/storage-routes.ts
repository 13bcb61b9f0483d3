import { randomUUID } from 'node:crypto';
import { LocalStorageSpec, ResourceName, S3StorageSpec } from '@dbbackup/proto';
import { Hono } from 'hono';
import { sql } from 'kysely';
import { z } from 'zod';
import { json } from '../db/database.js';
import { conflict, notFound, ProblemError } from '../problem.js';
import { rescanS3 } from '../services/catalog-rescan.js';
import { createCommand } from '../services/command-state.js';
import { storageRefFor, storageSpecFor } from '../services/storage-specs.js';
import type { AuthEnv } from './auth.js';
import { parseJson, uuidParam } from './input.js';
import type { Ctx, RouteDeps } from './route-deps.js';
import { storageView } from './views.js';

/** A storage profile as the API takes it: the wire's StorageSpec, named instead of identified. */
const StorageBody = z.discriminatedUnion('kind', [
  S3StorageSpec.omit({ id: true })
    .extend({
      name: ResourceName,
      credentials: z
        .object({ accessKeyId: z.string().min(1).max(256), secretAccessKey: z.string().min(1).max(512) })
        .strict()
        .optional(),
    })
    .strict(),
  LocalStorageSpec.omit({ id: true })
    .extend({ name: ResourceName, directory: z.string().min(1).max(4096).startsWith('/') })
    .strict(),
]);

/** Storage profiles: where backups go. Credentials are sealed at rest and never shown. */
export function storageRoutes(d: RouteDeps) {
  const api = new Hono<AuthEnv>();
  api.post('/storage', (c) => createStorage(c, d));
  api.get('/storage', async (c) => {
    const rows = await d.db.selectFrom('storage_profiles').selectAll().orderBy('created_at').execute();
    return c.json({ items: rows.map(storageView) });
  });
  api.get('/storage/:id', async (c) => {
    const row = await d.db
      .selectFrom('storage_profiles')
      .selectAll()
      .where('id', '=', uuidParam(c, 'id', 'storage profile'))
      .executeTakeFirst();
    if (!row) throw notFound('storage profile');
    return c.json(storageView(row));
  });
  api.post('/storage/:id/rescan', (c) => rescanStorage(c, d));
  api.post('/storage/:id/test', (c) => testStorage(c, d));
  api.delete('/storage/:id', (c) => deleteStorage(c, d));
  return api;
}

async function createStorage(c: Ctx, { db, box }: RouteDeps) {
  const body = await parseJson(c, StorageBody);
  const { name, kind, ...rest } = body;
  const { credentials, ...config } = rest as typeof rest & { credentials?: unknown };
  const id = randomUUID();
  try {
    await db
      .insertInto('storage_profiles')
      .values({
        id,
        name,
        kind,
        config: json(config),
        secret_enc: credentials ? box.seal(JSON.stringify(credentials)) : null,
      })
      .execute();
  } catch (err) {
    if ((err as { code?: string }).code === '23505') throw conflict(`a storage profile named ${name} exists`);
    throw err;
  }
  const row = await db
    .selectFrom('storage_profiles')
    .selectAll()
    .where('id', '=', id)
    .executeTakeFirstOrThrow();
  return c.json(storageView(row), 201);
}

/**
 * Test a profile from an agent's host (the one place that matters: backups are written from
 * there): the agent writes a small object, reads it back and deletes it. 202 with the
 * command to follow; 409 when the agent is not online to do it now.
 */
async function testStorage(c: Ctx, { db, bus }: RouteDeps) {
  const id = uuidParam(c, 'id', 'storage profile');
  const body = await parseJson(c, z.object({ agentId: z.uuid() }).strict());
  const agent = await db
    .selectFrom('agents')
    .select(['id', 'status', 'hostname'])
    .where('id', '=', body.agentId)
    .executeTakeFirst();
  if (!agent) throw notFound('agent');
  if (agent.status !== 'online')
    throw conflict(
      `agent ${agent.hostname} is ${agent.status}; a storage test needs it online`,
      'agent-offline',
    );
  const storage = await storageRefFor(db, id);
  const commandId = await createCommand(db, {
    agentId: agent.id,
    command: { kind: 'storage.test', storage },
    ttlSeconds: 300,
    createdBy: c.get('principal').tokenId,
  });
  await bus.publish({ kind: 'commands', agentId: agent.id });
  return c.json({ commandId, agentId: agent.id }, 202);
}

/** Rebuild catalogue entries from the bucket's meta.json commit markers (S3 profiles). */
async function rescanStorage(c: Ctx, { db, box }: RouteDeps) {
  const id = uuidParam(c, 'id', 'storage profile');
  const spec = await storageSpecFor(db, box, id);
  if (spec.kind !== 's3')
    throw conflict(
      'only S3 storage can be rescanned by the control plane; local disks belong to their agent',
    );
  try {
    return c.json(await rescanS3(db, spec));
  } catch (err) {
    throw new ProblemError(502, 'Bad Gateway', `cannot read the bucket: ${(err as Error).message}`, {
      type: 'storage-unreachable',
    });
  }
}

async function deleteStorage(c: Ctx, { db }: RouteDeps) {
  const id = uuidParam(c, 'id', 'storage profile');
  const used = await db.selectFrom('targets').select('id').where('storage_id', '=', id).executeTakeFirst();
  if (used) throw conflict('storage profile is used by a target');
  const scheduled = await db
    .selectFrom('schedules')
    .select('id')
    .where(sql<boolean>`options->>'storageId' = ${id}`)
    .executeTakeFirst();
  if (scheduled) throw conflict(`storage profile is used by schedule ${scheduled.id}`, 'storage-in-use');
  const b = await db.selectFrom('backups').select('id').where('storage_id', '=', id).executeTakeFirst();
  if (b) throw conflict('storage profile holds catalogued backups');
  const r = await db.deleteFrom('storage_profiles').where('id', '=', id).executeTakeFirst();
  if (Number(r.numDeletedRows) === 0) throw notFound('storage profile');
  return c.body(null, 204);
}
