import { createHash, randomUUID } from 'node:crypto';
import {
  Connection,
  connectionProblem,
  type DiscoveredDb,
  EngineId,
  LocalStorageSpec,
  OperatorSecretRef,
  ResourceName,
  S3StorageSpec,
  SecretRef,
  TargetOptions,
} from '@dbbackup/proto';
import { Hono } from 'hono';
import { sql } from 'kysely';
import { z } from 'zod';
import { type KekSource, kekPrivateJwk } from '../crypto/key-encryption-key.js';
import type { SecretBox } from '../crypto/secret-box.js';
import { type Db, json } from '../db/database.js';
import { bumpAgentConfig } from '../services/agent-config.js';
import { rescanS3 } from '../services/catalog-rescan.js';
import { createCommand, getCommand, TERMINAL } from '../services/commands.js';
import { startBackupJob, startRestoreOrVerify, storageSpecFor } from '../services/jobs.js';
import { rotationView, startRotation } from '../services/key-rotation.js';
import type { NotifyBus } from '../services/notify-bus.js';
import type { AuthEnv } from './auth.js';
import {
  conflict,
  notFound,
  ProblemError,
  parseJson,
  uuidParam,
  uuidQuery,
  validationProblem,
} from './problem.js';

export interface BackupRouteDeps {
  db: Db;
  box: SecretBox;
  kek: KekSource;
  bus: NotifyBus;
  commandTtlSeconds: number;
  targetTestTimeoutMs: number;
}

const Name = ResourceName;

/** A storage profile as the API takes it: the wire's StorageSpec, named instead of identified. */
const StorageBody = z.discriminatedUnion('kind', [
  S3StorageSpec.omit({ id: true })
    .extend({
      name: Name,
      credentials: z
        .object({ accessKeyId: z.string().min(1).max(256), secretAccessKey: z.string().min(1).max(512) })
        .strict()
        .optional(),
    })
    .strict(),
  LocalStorageSpec.omit({ id: true })
    .extend({ name: Name, directory: z.string().min(1).max(4096).startsWith('/') })
    .strict(),
]);

// An operator names a secret the agent's host declared, or none: never a file or an
// environment variable (those older kinds stay valid only on targets that had them).
const TargetFields = z
  .object({
    engine: EngineId,
    name: Name,
    connection: Connection,
    secretRef: OperatorSecretRef.default({ kind: 'none' }),
    storageId: z.uuid(),
    options: TargetOptions.default({ compression: 'zstd' }),
  })
  .strict();
/** PATCH /targets/:id: every field optional and without defaults; options as a merge patch. */
const TargetPatch = z
  .object({
    name: Name.optional(),
    connection: Connection.optional(),
    secretRef: OperatorSecretRef.optional(),
    storageId: z.uuid().optional(),
    options: z.record(z.string(), z.unknown()).optional(),
  })
  .strict();

const TargetBody = TargetFields.superRefine((t, ctx) => {
  const p = connectionProblem(t.engine, t.connection);
  if (p) ctx.addIssue({ code: 'custom', path: ['connection'], message: p });
});
/** A target after a PATCH: it may keep an older secret reference it already had. */
const PatchedTarget = TargetFields.extend({ secretRef: SecretRef }).superRefine((t, ctx) => {
  const p = connectionProblem(t.engine, t.connection);
  if (p) ctx.addIssue({ code: 'custom', path: ['connection'], message: p });
});

type StorageRow = {
  id: string;
  name: string;
  kind: string;
  config: Record<string, unknown>;
  secret_enc: string | null;
  created_at: Date;
  updated_at: Date;
};
const storageView = (r: StorageRow) => ({
  id: r.id,
  name: r.name,
  kind: r.kind,
  ...r.config,
  hasCredentials: r.secret_enc !== null,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

type TargetRow = {
  id: string;
  agent_id: string;
  engine: string;
  name: string;
  connection: Record<string, unknown>;
  secret_ref: Record<string, unknown>;
  options: Record<string, unknown>;
  storage_id: string;
  server_version: string | null;
  created_at: Date;
  updated_at: Date;
};
const targetView = (r: TargetRow) => ({
  id: r.id,
  agentId: r.agent_id,
  engine: r.engine,
  name: r.name,
  connection: r.connection,
  secretRef: r.secret_ref,
  options: r.options,
  storageId: r.storage_id,
  serverVersion: r.server_version,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

type JobRow = {
  id: string;
  type: string;
  state: string;
  agent_id: string;
  target_id: string | null;
  backup_id: string | null;
  command_id: string | null;
  origin: string;
  schedule_id: string | null;
  run_while_disconnected: boolean;
  params: unknown;
  progress: unknown;
  result: unknown;
  error: unknown;
  created_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
};
const jobView = (r: JobRow) => ({
  id: r.id,
  type: r.type,
  state: r.state,
  agentId: r.agent_id,
  targetId: r.target_id,
  backupId: r.backup_id,
  commandId: r.command_id,
  origin: r.origin,
  scheduleId: r.schedule_id,
  runWhileDisconnected: r.run_while_disconnected,
  params: r.params,
  progress: r.progress,
  result: r.result,
  error: r.error,
  createdAt: r.created_at,
  startedAt: r.started_at,
  finishedAt: r.finished_at,
});

type BackupRow = {
  id: string;
  target_id: string | null;
  agent_id: string;
  storage_id: string;
  object_key: string;
  filename: string;
  size_bytes: number;
  sha256: string;
  status: string;
  started_at: Date;
  finished_at: Date;
  meta: Record<string, unknown>;
  schedule_id?: string | null;
  run_while_disconnected?: boolean;
  deleted_at?: Date | null;
  deleted_reason?: string | null;
};
const backupView = (r: BackupRow) => {
  const { wrappedKey: _hidden, ...meta } = r.meta;
  return {
    id: r.id,
    targetId: r.target_id,
    agentId: r.agent_id,
    storageId: r.storage_id,
    objectKey: r.object_key,
    filename: r.filename,
    sizeBytes: r.size_bytes,
    sha256: r.sha256,
    status: r.status,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    scheduleId: r.schedule_id ?? null,
    runWhileDisconnected: r.run_while_disconnected ?? false,
    deletedAt: r.deleted_at ?? null,
    deletedReason: r.deleted_reason ?? null,
    meta,
  };
};

export function backupRoutes(d: BackupRouteDeps) {
  const { db, box } = d;
  const api = new Hono<AuthEnv>();

  // --- storage profiles ---------------------------------------------------------------------------
  api.post('/storage', async (c) => {
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
      if ((err as { code?: string }).code === '23505')
        throw conflict(`a storage profile named ${name} exists`);
      throw err;
    }
    const row = await db
      .selectFrom('storage_profiles')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirstOrThrow();
    return c.json(storageView(row), 201);
  });
  api.get('/storage', async (c) => {
    const rows = await db.selectFrom('storage_profiles').selectAll().orderBy('created_at').execute();
    return c.json({ items: rows.map(storageView) });
  });
  api.get('/storage/:id', async (c) => {
    const row = await db
      .selectFrom('storage_profiles')
      .selectAll()
      .where('id', '=', uuidParam(c, 'id', 'storage profile'))
      .executeTakeFirst();
    if (!row) throw notFound('storage profile');
    return c.json(storageView(row));
  });
  /** Rebuild catalogue entries from the bucket's meta.json commit markers (S3 profiles). */
  api.post('/storage/:id/rescan', async (c) => {
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
  });

  api.delete('/storage/:id', async (c) => {
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
  });

  // --- targets --------------------------------------------------------------------------------------
  /** Ask the agent to connect to the target before saving it. */
  async function testTarget(
    agentId: string,
    target: z.infer<typeof PatchedTarget> & { id: string },
    createdBy: string,
  ) {
    const agent = await db
      .selectFrom('agents')
      .select(['status'])
      .where('id', '=', agentId)
      .executeTakeFirst();
    if (!agent) throw notFound('agent');
    if (agent.status === 'revoked') throw conflict('agent has been revoked', 'agent-revoked');
    if (agent.status !== 'online')
      throw conflict(
        `agent is ${agent.status}; a target is tested through its agent before it is saved`,
        'agent-offline',
      );
    const storage = await db
      .selectFrom('storage_profiles')
      .select('id')
      .where('id', '=', target.storageId)
      .executeTakeFirst();
    if (!storage)
      throw new ProblemError(422, 'Unprocessable Content', 'storageId names no storage profile', {
        type: 'validation',
      });
    const ttl = Math.ceil(d.targetTestTimeoutMs / 1000) + 5;
    const commandId = await createCommand(db, {
      agentId,
      command: {
        kind: 'target.test',
        target: {
          id: target.id,
          engine: target.engine,
          name: target.name,
          connection: target.connection,
          secretRef: target.secretRef,
          options: target.options,
        },
      },
      ttlSeconds: ttl,
      createdBy,
    });
    await d.bus.publish({ kind: 'commands', agentId });
    const deadline = Date.now() + d.targetTestTimeoutMs;
    while (Date.now() < deadline) {
      const cmd = await getCommand(db, commandId);
      if (cmd && TERMINAL.includes(cmd.state)) {
        if (cmd.state === 'succeeded') return cmd.result as { serverVersion: string; toolVersion: string };
        const e = cmd.error as { code?: string; message?: string } | null;
        throw new ProblemError(
          422,
          'Unprocessable Content',
          `connection test failed on the agent: ${e?.message ?? cmd.state}`,
          {
            type: 'target-test-failed',
            extra: { code: e?.code ?? cmd.state, commandId },
          },
        );
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new ProblemError(
      504,
      'Gateway Timeout',
      `the agent did not answer the connection test within ${d.targetTestTimeoutMs} ms`,
      {
        type: 'target-test-timeout',
        extra: { commandId },
      },
    );
  }

  async function createTarget(agentId: string, body: z.infer<typeof TargetBody>, createdBy: string) {
    const dup = await db
      .selectFrom('targets')
      .select('id')
      .where('agent_id', '=', agentId)
      .where('name', '=', body.name)
      .executeTakeFirst();
    if (dup) throw conflict(`this agent already has a target named ${body.name}`);
    const id = randomUUID();
    const tested = await testTarget(agentId, { ...body, id }, createdBy);
    await db
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
      .execute();
    const row = await db.selectFrom('targets').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
    return { ...targetView(row), test: tested };
  }

  api.post('/agents/:id/targets', async (c) => {
    const agentId = uuidParam(c, 'id', 'agent');
    const body = await parseJson(c, TargetBody);
    return c.json(await createTarget(agentId, body, c.get('principal').tokenId), 201);
  });

  // --- discovery ------------------------------------------------------------------------------------
  /** What the agent found on its host (its last heartbeat), each with a stable key to adopt it by. */
  async function discovered(agentId: string) {
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

  api.get('/agents/:id/discovered', async (c) =>
    c.json({ items: await discovered(uuidParam(c, 'id', 'agent')) }),
  );

  /** Turn a discovered database into a target: the same connection test and checks as POST /targets. */
  api.post('/agents/:id/discovered/:key/adopt', async (c) => {
    const agentId = uuidParam(c, 'id', 'agent');
    const key = c.req.param('key');
    const found = (await discovered(agentId)).find((d) => d.key === key);
    if (!found) throw notFound('discovered database');
    const extra = await parseJson(
      c,
      z
        .object({
          name: Name,
          storageId: z.uuid(),
          secretRef: OperatorSecretRef.optional(),
          options: TargetOptions.optional(),
        })
        .strict(),
    );
    const body = TargetBody.parse({
      engine: found.engine,
      name: extra.name,
      connection: found.connection,
      secretRef: extra.secretRef ?? { kind: 'none' },
      storageId: extra.storageId,
      options: extra.options ?? { compression: 'zstd' },
    });
    return c.json(await createTarget(agentId, body, c.get('principal').tokenId), 201);
  });

  api.get('/targets', async (c) => {
    let q = db.selectFrom('targets').selectAll().orderBy('created_at');
    const agent = uuidQuery(c, 'agent');
    if (agent) q = q.where('agent_id', '=', agent);
    return c.json({ items: (await q.execute()).map(targetView) });
  });
  api.get('/agents/:id/targets', async (c) => {
    const rows = await db
      .selectFrom('targets')
      .selectAll()
      .where('agent_id', '=', uuidParam(c, 'id', 'agent'))
      .orderBy('created_at')
      .execute();
    return c.json({ items: rows.map(targetView) });
  });
  api.get('/targets/:id', async (c) => {
    const row = await db
      .selectFrom('targets')
      .selectAll()
      .where('id', '=', uuidParam(c, 'id', 'target'))
      .executeTakeFirst();
    if (!row) throw notFound('target');
    return c.json(targetView(row));
  });
  api.patch('/targets/:id', async (c) => {
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
    const tested = await testTarget(row.agent_id, { ...merged, id }, c.get('principal').tokenId);
    await db
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
      .execute();
    // The agent runs this target's schedules on its own clock: it gets the change now.
    await bumpAgentConfig(db, d.bus, row.agent_id, c.get('principal').tokenId);
    return c.json(
      targetView(await db.selectFrom('targets').selectAll().where('id', '=', id).executeTakeFirstOrThrow()),
    );
  });
  api.delete('/targets/:id', async (c) => {
    const id = uuidParam(c, 'id', 'target');
    const active = await db
      .selectFrom('jobs')
      .select('id')
      .where('target_id', '=', id)
      .where('state', 'in', ['queued', 'running'])
      .executeTakeFirst();
    if (active) throw conflict('the target has a queued or running job');
    const r = await db.deleteFrom('targets').where('id', '=', id).returning('agent_id').executeTakeFirst();
    if (!r) throw notFound('target');
    // The agent stops backing it up on its own clock with the next configuration.
    await bumpAgentConfig(db, d.bus, r.agent_id, c.get('principal').tokenId);
    return c.body(null, 204);
  });

  // --- jobs -----------------------------------------------------------------------------------------
  api.post('/targets/:id/backups', async (c) => {
    const id = uuidParam(c, 'id', 'target');
    const { jobId } = await startBackupJob(
      db,
      box,
      d.kek,
      id,
      c.get('principal').tokenId,
      d.commandTtlSeconds,
    );
    await publishFor(jobId);
    const job = await db.selectFrom('jobs').selectAll().where('id', '=', jobId).executeTakeFirstOrThrow();
    return c.json(jobView(job), 202, { location: `/api/v1/jobs/${jobId}` });
  });

  async function publishFor(jobId: string) {
    const j = await db
      .selectFrom('jobs')
      .select('agent_id')
      .where('id', '=', jobId)
      .executeTakeFirstOrThrow();
    await d.bus.publish({ kind: 'commands', agentId: j.agent_id });
  }

  api.get('/jobs', async (c) => {
    let q = db.selectFrom('jobs').selectAll().orderBy('created_at', 'desc').limit(200);
    const target = uuidQuery(c, 'target');
    if (target) q = q.where('target_id', '=', target);
    const state = c.req.query('state');
    if (state) q = q.where('state', '=', state as never);
    return c.json({ items: (await q.execute()).map(jobView) });
  });
  api.get('/jobs/:id', async (c) => {
    const row = await db
      .selectFrom('jobs')
      .selectAll()
      .where('id', '=', uuidParam(c, 'id', 'job'))
      .executeTakeFirst();
    if (!row) throw notFound('job');
    return c.json(jobView(row));
  });
  api.get('/jobs/:id/logs', async (c) => {
    const id = uuidParam(c, 'id', 'job');
    const job = await db.selectFrom('jobs').select(['id', 'state']).where('id', '=', id).executeTakeFirst();
    if (!job) throw notFound('job');
    const after = Number(c.req.query('after') ?? 0) || 0;
    const rows = await db
      .selectFrom('job_logs')
      .select(['id', 'at', 'level', 'message'])
      .where('job_id', '=', id)
      .where('id', '>', after)
      .orderBy('id')
      .limit(1000)
      .execute();
    // Live while running: poll with ?after=<last id>.
    return c.json({
      state: job.state,
      items: rows.map((r) => ({ id: r.id, at: r.at, level: r.level, message: r.message })),
    });
  });

  // --- backups catalogue ----------------------------------------------------------------------------
  api.get('/backups', async (c) => {
    let q = db.selectFrom('backups').selectAll().orderBy('started_at', 'desc').limit(500);
    // Backups removed by retention are listed only when asked for.
    if (c.req.query('deleted') !== 'true') q = q.where('deleted_at', 'is', null);
    const target = uuidQuery(c, 'target');
    if (target) q = q.where('target_id', '=', target);
    return c.json({ items: (await q.execute()).map(backupView) });
  });
  api.get('/backups/:id', async (c) => {
    const row = await db
      .selectFrom('backups')
      .selectAll()
      .where('id', '=', uuidParam(c, 'id', 'backup'))
      .executeTakeFirst();
    if (!row) throw notFound('backup');
    return c.json(backupView(row));
  });
  api.post('/backups/:id/verify', async (c) => {
    const id = uuidParam(c, 'id', 'backup');
    const { jobId } = await startRestoreOrVerify(
      db,
      box,
      id,
      { type: 'verify' },
      c.get('principal').tokenId,
      d.commandTtlSeconds,
    );
    await publishFor(jobId);
    return c.json(
      jobView(await db.selectFrom('jobs').selectAll().where('id', '=', jobId).executeTakeFirstOrThrow()),
      202,
    );
  });
  api.post('/backups/:id/restore', async (c) => {
    const id = uuidParam(c, 'id', 'backup');
    const body = await parseJson(
      c,
      z
        .object({
          database: z.string().min(1).max(4096).optional(),
          conflict: z.enum(['fail', 'clean', 'create']).default('fail'),
          tables: z.array(z.string().min(1).max(127)).max(1000).optional(),
          targetId: z.uuid().optional(),
        })
        .strict(),
    );
    const { jobId } = await startRestoreOrVerify(
      db,
      box,
      id,
      { type: 'restore', ...body },
      c.get('principal').tokenId,
      d.commandTtlSeconds,
    );
    await publishFor(jobId);
    return c.json(
      jobView(await db.selectFrom('jobs').selectAll().where('id', '=', jobId).executeTakeFirstOrThrow()),
      202,
    );
  });

  // --- keys -----------------------------------------------------------------------------------------
  api.get('/keys/kek', async (c) => {
    const k = await d.kek.current();
    return c.json({ kid: k.kid, publicJwk: k.publicJwk });
  });

  api.post('/keys/kek/rotate', async (c) => {
    const p = c.get('principal');
    const id = await startRotation(db, box, d.bus, { id: p.tokenId, name: p.name });
    return c.json(await rotationView(db, id), 202);
  });

  api.get('/keys/rotations', async (c) => {
    const rows = await db
      .selectFrom('key_rotations')
      .select('id')
      .orderBy('created_at', 'desc')
      .limit(50)
      .execute();
    return c.json({ items: await Promise.all(rows.map((r) => rotationView(db, r.id))) });
  });

  api.get('/keys/rotations/:id', async (c) =>
    c.json(await rotationView(db, uuidParam(c, 'id', 'key rotation'))),
  );
  /** For safekeeping: with it and the bucket, `dbbackup-agent decrypt` restores without a control plane. */
  api.post('/keys/kek/export', async (c) => {
    // ?kid= exports an older key still held (before a rotation finishes); default the active one.
    const kid = c.req.query('kid') ?? (await d.kek.current()).kid;
    const known = await db
      .selectFrom('keys')
      .select(['kid', 'private_enc'])
      .where('kid', '=', kid)
      .executeTakeFirst();
    if (!known) throw notFound('key');
    if (!known.private_enc)
      throw conflict(`key ${kid} was retired after a key rotation; its private half is gone`);
    const jwk = await kekPrivateJwk(db, box, kid);
    return c.json({ kid, privateJwk: jwk });
  });

  return api;
}
