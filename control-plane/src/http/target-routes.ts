import { createHash, randomUUID } from 'node:crypto';
import {
  archivesWal,
  Connection,
  connectionProblem,
  type DiscoveredDb,
  EngineId,
  OperatorSecretRef,
  optionsProblem,
  ResourceName,
  SecretRef,
  TargetOptions,
} from '@dbbackup/proto';
import { Hono } from 'hono';
import { sql } from 'kysely';
import { z } from 'zod';
import { type Db, json } from '../db/database.js';
import { conflict, notFound, validationProblem } from '../problem.js';
import { bumpAgentConfig } from '../services/agent-config.js';
import { testConnection } from '../services/connection-test.js';
import type { AuthEnv } from './auth.js';
import { parseJson, uuidParam, uuidQuery } from './input.js';
import { keyset, paged, pageOf, timeKey } from './paging.js';
import type { Ctx, RouteDeps } from './route-deps.js';
import { targetView } from './views.js';

// An operator names a secret the agent's host declared, or none: never a file or an
// environment variable (those older kinds stay valid only on targets that had them).
const TargetFields = z
  .object({
    engine: EngineId,
    name: ResourceName,
    connection: Connection,
    secretRef: OperatorSecretRef.default({ kind: 'none' }),
    storageId: z.uuid(),
    options: TargetOptions.default({ compression: 'zstd' }),
  })
  .strict();
/** PATCH /targets/:id: every field optional and without defaults; options as a merge patch. */
const TargetPatch = z
  .object({
    name: ResourceName.optional(),
    connection: Connection.optional(),
    secretRef: OperatorSecretRef.optional(),
    storageId: z.uuid().optional(),
    options: z.record(z.string(), z.unknown()).optional(),
  })
  .strict();

const TargetBody = TargetFields.superRefine((t, ctx) => {
  const p = connectionProblem(t.engine, t.connection);
  if (p) ctx.addIssue({ code: 'custom', path: ['connection'], message: p });
  const o = optionsProblem(t.engine, t.options);
  if (o) ctx.addIssue({ code: 'custom', path: ['options'], message: o });
});
/** A target after a PATCH: it may keep an older secret reference it already had. */
const PatchedTarget = TargetFields.extend({ secretRef: SecretRef }).superRefine((t, ctx) => {
  const p = connectionProblem(t.engine, t.connection);
  if (p) ctx.addIssue({ code: 'custom', path: ['connection'], message: p });
  const o = optionsProblem(t.engine, t.options);
  if (o) ctx.addIssue({ code: 'custom', path: ['options'], message: o });
});

const AdoptBody = z
  .object({
    name: ResourceName,
    storageId: z.uuid(),
    secretRef: OperatorSecretRef.optional(),
    options: TargetOptions.optional(),
  })
  .strict();

/** Targets (the databases an agent backs up) and discovery (what an agent found on its host). */
export function targetRoutes(d: RouteDeps) {
  const { db } = d;
  const api = new Hono<AuthEnv>();
  api.post('/agents/:id/targets', async (c) => {
    const agentId = uuidParam(c, 'id', 'agent');
    const body = await parseJson(c, TargetBody);
    return c.json(await createTarget(d, agentId, body, c.get('principal').tokenId), 201);
  });
  api.get('/agents/:id/discovered', async (c) =>
    c.json({ items: await discovered(db, uuidParam(c, 'id', 'agent')) }),
  );
  api.post('/agents/:id/discovered/:key/adopt', (c) => adoptDiscovered(c, d));
  api.get('/targets', (c) => listTargets(c, db, uuidQuery(c, 'agent')));
  api.get('/agents/:id/targets', (c) => listTargets(c, db, uuidParam(c, 'id', 'agent')));
  api.get('/targets/:id', async (c) => {
    const id = uuidParam(c, 'id', 'target');
    const row = await db.selectFrom('targets').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) throw notFound('target');
    return c.json(targetView(row));
  });
  api.patch('/targets/:id', (c) => patchTarget(c, d));
  api.delete('/targets/:id', (c) => deleteTarget(c, d));
  return api;
}

/** Targets, of one agent or all, oldest first, a page at a time, with the total. */
async function listTargets(c: Ctx, db: Db, agentId: string | undefined) {
  const page = pageOf(c, 100);
  let q = db.selectFrom('targets').selectAll();
  let count = db.selectFrom('targets').select(sql<number>`count(*)::int`.as('n'));
  if (agentId) {
    q = q.where('agent_id', '=', agentId);
    count = count.where('agent_id', '=', agentId);
  }
  const rows = await keyset(q, { time: 'created_at' }, 'asc', page).execute();
  const p = paged(rows, page, (r) => timeKey(r.created_at, r.id));
  const total = (await count.executeTakeFirstOrThrow()).n;
  return c.json({ items: p.items.map(targetView), nextCursor: p.nextCursor, total });
}

function testDeps(d: RouteDeps) {
  return { db: d.db, bus: d.bus, timeoutMs: d.targetTestTimeoutMs };
}

async function createTarget(
  d: RouteDeps,
  agentId: string,
  body: z.infer<typeof TargetBody>,
  createdBy: string,
) {
  const { db } = d;
  const dup = await db
    .selectFrom('targets')
    .select('id')
    .where('agent_id', '=', agentId)
    .where('name', '=', body.name)
    .executeTakeFirst();
  if (dup) throw conflict(`this agent already has a target named ${body.name}`);
  const id = randomUUID();
  const tested = await testConnection(testDeps(d), agentId, { ...body, id }, createdBy);
  const row = await db
    .insertInto('targets')
    .values({
      id,
      agent_id: agentId,
      engine: body.engine,
      name: body.name,
      connection: json(body.connection),
      secret_ref: json(body.secretRef),
      options: json(body.options),
      storage_id: body.storageId,
      server_version: tested.serverVersion,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
  // A physical target's WAL is archived from now on: the agent learns it with its configuration.
  if (archivesWal({ engine: body.engine, options: body.options }))
    await bumpAgentConfig(db, d.bus, agentId, createdBy);
  return { ...targetView(row), test: tested };
}

/** What the agent found on its host (its last heartbeat), each with a stable key to adopt it by. */
async function discovered(db: Db, agentId: string) {
  const row = await db.selectFrom('agents').select(['facts']).where('id', '=', agentId).executeTakeFirst();
  if (!row) throw notFound('agent');
  const found = ((row.facts as { discovered?: DiscoveredDb[] } | null)?.discovered ?? []) as DiscoveredDb[];
  const targets = await db
    .selectFrom('targets')
    .select(['id', 'engine', 'connection'])
    .where('agent_id', '=', agentId)
    .execute();
  return found.map((f) => {
    const { engine, version, ...connection } = f;
    const key = createHash('sha256')
      .update(
        JSON.stringify([engine, connection.host, connection.port, connection.database, connection.path]),
      )
      .digest('hex')
      .slice(0, 16);
    const adopted = targets.find((t) => {
      const tc = t.connection as Record<string, unknown>;
      return (
        t.engine === engine &&
        tc.host === connection.host &&
        tc.port === connection.port &&
        tc.database === connection.database &&
        tc.path === connection.path
      );
    });
    return { key, engine, version: version ?? null, connection, targetId: adopted?.id ?? null };
  });
}

/** Turn a discovered database into a target: the same connection test and checks as POST /targets. */
async function adoptDiscovered(c: Ctx, d: RouteDeps) {
  const agentId = uuidParam(c, 'id', 'agent');
  const key = c.req.param('key');
  const found = (await discovered(d.db, agentId)).find((x) => x.key === key);
  if (!found) throw notFound('discovered database');
  const extra = await parseJson(c, AdoptBody);
  const body = TargetBody.parse({
    engine: found.engine,
    name: extra.name,
    connection: found.connection,
    secretRef: extra.secretRef ?? { kind: 'none' },
    storageId: extra.storageId,
    options: extra.options ?? { compression: 'zstd' },
  });
  return c.json(await createTarget(d, agentId, body, c.get('principal').tokenId), 201);
}

async function patchTarget(c: Ctx, d: RouteDeps) {
  const { db } = d;
  const id = uuidParam(c, 'id', 'target');
  const row = await db.selectFrom('targets').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) throw notFound('target');
  // Only what the body names changes (no schema defaults fill in what it leaves out);
  // options merge key by key, a null removing one (JSON merge patch).
  const patch = await parseJson(c, TargetPatch);
  const options: Record<string, unknown> = { ...(row.options as Record<string, unknown>) };
  for (const [k, v] of Object.entries(patch.options ?? {})) {
    if (v === null) delete options[k];
    else options[k] = v;
  }
  const parsed = PatchedTarget.safeParse({
    engine: row.engine,
    name: patch.name ?? row.name,
    connection: patch.connection ?? row.connection,
    secretRef: patch.secretRef ?? row.secret_ref,
    storageId: patch.storageId ?? row.storage_id,
    options,
  });
  if (!parsed.success) throw validationProblem(parsed.error);
  const merged = parsed.data;
  const tested = await testConnection(
    testDeps(d),
    row.agent_id,
    { ...merged, id },
    c.get('principal').tokenId,
  );
  const updated = await db
    .updateTable('targets')
    .set({
      name: merged.name,
      connection: json(merged.connection),
      secret_ref: json(merged.secretRef),
      options: json(merged.options),
      storage_id: merged.storageId,
      server_version: tested.serverVersion,
      updated_at: new Date(),
    })
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirstOrThrow();
  // The agent runs this target's schedules on its own clock: it gets the change now.
  await bumpAgentConfig(db, d.bus, row.agent_id, c.get('principal').tokenId);
  return c.json(targetView(updated));
}

async function deleteTarget(c: Ctx, d: RouteDeps) {
  const id = uuidParam(c, 'id', 'target');
  const active = await d.db
    .selectFrom('jobs')
    .select('id')
    .where('target_id', '=', id)
    .where('state', 'in', ['queued', 'running'])
    .executeTakeFirst();
  if (active) throw conflict('the target has a queued or running job');
  const r = await d.db.deleteFrom('targets').where('id', '=', id).returning('agent_id').executeTakeFirst();
  if (!r) throw notFound('target');
  // The agent stops backing it up on its own clock with the next configuration.
  await bumpAgentConfig(d.db, d.bus, r.agent_id, c.get('principal').tokenId);
  return c.body(null, 204);
}
