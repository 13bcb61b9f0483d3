import { randomUUID } from 'node:crypto';
import { PingCommand, ProbeCommand } from '@dbbackup/proto';
import { Hono } from 'hono';
import { importJWK, type JWK } from 'jose';
import { sql } from 'kysely';
import { z } from 'zod';
import { type Db, json } from '../db/database.js';
import { setAgentStatus } from '../services/agent-status.js';
import {
  cancelAgentCommands,
  commandView,
  createCommand,
  getCommand,
  redactEventBody,
} from '../services/commands.js';
import type { Notifier } from '../services/notifications.js';
import type { NotifyBus } from '../services/notify-bus.js';
import { auditRoutes } from './audit-routes.js';
import { type AuthEnv, authenticate, createApiToken, hashToken, newSecretToken } from './auth.js';
import { type AuthSettings, publicAuthRoutes, userRoutes } from './auth-routes.js';
import { type BackupRouteDeps, backupRoutes } from './backup-routes.js';
import { installCommand, publicUrlOf } from './install-routes.js';
import { notificationRoutes } from './notification-routes.js';
import { authorize, ROLES } from './permissions.js';
import { conflict, notFound, ProblemError, parseJson, unauthorized, uuidParam } from './problem.js';
import { scheduleRoutes } from './schedule-routes.js';

export interface RouteDeps {
  backups?: BackupRouteDeps;
  db: Db;
  bus: NotifyBus;
  clusterId: string;
  heartbeatIntervalMs: number;
  commandTtlSeconds: number;
  enrollmentTokenTtlSeconds: number;
  publicUrl: string | undefined;
  auth: AuthSettings;
  notifier?: Notifier;
}

const Labels = z
  .record(
    z.string().regex(/^[a-zA-Z0-9_.\-/]{1,63}$/, 'label keys: 1-63 of [a-zA-Z0-9_.-/]'),
    z.string().max(255),
  )
  .refine((l) => Object.keys(l).length <= 64, 'at most 64 labels');

const PublicOkp = (crv: 'Ed25519' | 'X25519') =>
  z
    .object({ kty: z.literal('OKP'), crv: z.literal(crv), x: z.string().min(40).max(64) })
    .loose()
    .refine((k) => !('d' in k), 'must be a public key (no "d")');

const EnrollBody = z.object({
  token: z.string().min(1).max(256),
  hostname: z.string().min(1).max(255),
  agentVersion: z.string().min(1).max(64),
  labels: Labels.default({}),
  signingKey: PublicOkp('Ed25519'),
  encryptionKey: PublicOkp('X25519').optional(),
});

export function apiRoutes(d: RouteDeps) {
  const { db } = d;
  const api = new Hono<AuthEnv>();

  // Enrolment authenticates with the one-time token in its body, not a bearer token.
  api.post('/agents/enroll', async (c) => {
    const body = await parseJson(c, EnrollBody);
    try {
      await importJWK(body.signingKey as JWK, 'EdDSA');
      if (body.encryptionKey) await importJWK(body.encryptionKey as JWK, 'ECDH-ES');
    } catch {
      throw new ProblemError(
        422,
        'Unprocessable Content',
        'signingKey/encryptionKey is not a usable public JWK',
        {
          type: 'validation',
        },
      );
    }
    const agentId = randomUUID();
    const hash = hashToken(body.token);
    const result = await db.transaction().execute(async (tx) => {
      // One UPDATE decides the race: of two enrolments with the same token exactly one claims it.
      const claimed = await tx
        .updateTable('enrollment_tokens')
        .set({ used_at: new Date() })
        .where('token_hash', '=', hash)
        .where('used_at', 'is', null)
        .where('expires_at', '>', new Date())
        .returning(['id', 'labels'])
        .executeTakeFirst();
      if (!claimed) return undefined;
      const labels = { ...claimed.labels, ...body.labels };
      await tx
        .insertInto('agents')
        .values({
          id: agentId,
          hostname: body.hostname,
          agent_version: body.agentVersion,
          labels: json(labels),
          signing_jwk: json({ kty: 'OKP', crv: 'Ed25519', x: body.signingKey.x }),
          encryption_jwk: json(
            body.encryptionKey ? { kty: 'OKP', crv: 'X25519', x: body.encryptionKey.x } : null,
          ),
          status: 'pending',
        })
        .execute();
      await tx
        .updateTable('enrollment_tokens')
        .set({ agent_id: agentId })
        .where('id', '=', claimed.id)
        .execute();
      await tx
        .insertInto('agent_status_history')
        .values({ agent_id: agentId, status: 'pending', reason: 'enrolled' })
        .execute();
      return { labels };
    });
    if (!result) {
      const t = await db
        .selectFrom('enrollment_tokens')
        .select(['used_at', 'expires_at'])
        .where('token_hash', '=', hash)
        .executeTakeFirst();
      if (!t) throw unauthorized('unknown enrollment token', 'enrollment-token-invalid');
      if (t.used_at) throw conflict('enrollment token has already been used', 'enrollment-token-used');
      throw unauthorized(
        `enrollment token expired at ${new Date(t.expires_at).toISOString()}`,
        'enrollment-token-expired',
      );
    }
    return c.json(
      {
        agentId,
        audience: d.clusterId,
        connectPath: '/v1/agent/connect',
        heartbeatIntervalMs: d.heartbeatIntervalMs,
        labels: result.labels,
      },
      201,
    );
  });

  api.route('/', publicAuthRoutes(db, d.auth));
  api.use('*', authenticate(db, d.auth.jwtKey));
  api.use('*', authorize());
  api.route('/', userRoutes(db));
  api.route('/', auditRoutes(db));
  if (d.backups) api.route('/', backupRoutes(d.backups));
  if (d.backups && d.notifier)
    api.route('/', notificationRoutes({ db, box: d.backups.box, notifier: d.notifier }));
  if (d.backups) api.route('/', scheduleRoutes({ db, bus: d.bus, box: d.backups.box }));

  api.post('/tokens', async (c) => {
    const body = await parseJson(
      c,
      z.object({
        name: z.string().min(1).max(100),
        role: z.enum(ROLES as [string, ...string[]]),
        /** Days until the token stops working; absent = no expiry. */
        expiresInDays: z.number().int().min(1).max(3650).optional(),
      }),
    );
    const expiresAt = body.expiresInDays ? new Date(Date.now() + body.expiresInDays * 86_400_000) : null;
    const t = await createApiToken(db, body.name, body.role as (typeof ROLES)[number], expiresAt);
    return c.json(t, 201);
  });

  api.get('/tokens', async (c) => {
    const rows = await db
      .selectFrom('api_tokens')
      .select(['id', 'name', 'role', 'created_at', 'last_used_at', 'revoked_at', 'expires_at'])
      .orderBy('created_at')
      .execute();
    return c.json({
      items: rows.map((r) => ({
        id: r.id,
        name: r.name,
        role: r.role,
        createdAt: r.created_at,
        lastUsedAt: r.last_used_at,
        revokedAt: r.revoked_at,
        expiresAt: r.expires_at,
      })),
    });
  });

  api.delete('/tokens/:id', async (c) => {
    const id = uuidParam(c, 'id', 'token');
    if (id === c.get('principal').tokenId) throw conflict('a token cannot revoke itself');
    const r = await db
      .updateTable('api_tokens')
      .set({ revoked_at: new Date() })
      .where('id', '=', id)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    if (Number(r.numUpdatedRows) === 0) throw notFound('token');
    return c.body(null, 204);
  });

  api.post('/enrollment-tokens', async (c) => {
    const body = await parseJson(
      c,
      z.object({
        ttlSeconds: z
          .number()
          .int()
          .min(60)
          .max(30 * 86_400)
          .default(d.enrollmentTokenTtlSeconds),
        labels: Labels.default({}),
      }),
    );
    const token = newSecretToken('enr');
    const id = randomUUID();
    const expiresAt = new Date(Date.now() + body.ttlSeconds * 1000);
    await db
      .insertInto('enrollment_tokens')
      .values({
        id,
        token_hash: hashToken(token),
        labels: json(body.labels),
        created_by: c.get('principal').tokenId,
        expires_at: expiresAt,
      })
      .execute();
    let install: string | null = null;
    try {
      install = installCommand(publicUrlOf(c, d.publicUrl), token);
    } catch {
      // A Host header not fit for a shell line: the token is still good.
    }
    return c.json(
      { id, token, expiresAt: expiresAt.toISOString(), labels: body.labels, installCommand: install },
      201,
    );
  });

  api.get('/agents', async (c) => {
    const rows = await db.selectFrom('agents').selectAll().orderBy('enrolled_at').execute();
    return c.json({ items: rows.map(agentView) });
  });

  api.get('/agents/:id', async (c) => {
    const id = uuidParam(c, 'id', 'agent');
    const row = await db.selectFrom('agents').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) throw notFound('agent');
    const history = await db
      .selectFrom('agent_status_history')
      .select(['status', 'reason', 'at'])
      .where('agent_id', '=', id)
      .orderBy('id', 'desc')
      .limit(100)
      .execute();
    return c.json({ ...agentView(row), facts: row.facts, history });
  });

  api.delete('/agents/:id', async (c) => {
    const id = uuidParam(c, 'id', 'agent');
    const row = await db.selectFrom('agents').select(['status']).where('id', '=', id).executeTakeFirst();
    if (!row) throw notFound('agent');
    if (row.status !== 'revoked') {
      await setAgentStatus(db, id, 'revoked', `revoked by ${c.get('principal').name}`);
      await cancelAgentCommands(db, id, 'agent revoked');
      await d.bus.publish({ kind: 'revoke', agentId: id });
    }
    return c.body(null, 204);
  });

  api.post('/agents/:id/commands', async (c) => {
    const id = uuidParam(c, 'id', 'agent');
    const body = await parseJson(
      c,
      z.object({
        // Only what cannot reach data or keys: every other command is made by its own endpoint,
        // which checks what it names (a raw backup could be sealed to a key of the caller's).
        command: z.discriminatedUnion('kind', [PingCommand, ProbeCommand]),
        ttlSeconds: z
          .number()
          .int()
          .min(1)
          .max(30 * 86_400)
          .optional(),
      }),
    );
    const agent = await db.selectFrom('agents').select(['status']).where('id', '=', id).executeTakeFirst();
    if (!agent) throw notFound('agent');
    if (agent.status === 'revoked') throw conflict('agent has been revoked', 'agent-revoked');
    const commandId = await createCommand(db, {
      agentId: id,
      command: body.command,
      ttlSeconds: body.ttlSeconds ?? d.commandTtlSeconds,
      createdBy: c.get('principal').tokenId,
    });
    await d.bus.publish({ kind: 'commands', agentId: id });
    const row = await getCommand(db, commandId);
    return c.json(commandView(row!), 202, { location: `/api/v1/commands/${commandId}` });
  });

  api.get('/agents/:id/commands', async (c) => {
    const id = uuidParam(c, 'id', 'agent');
    const rows = await db
      .selectFrom('commands')
      .selectAll()
      .where('agent_id', '=', id)
      .orderBy('created_at', 'desc')
      .limit(200)
      .execute();
    return c.json({ items: rows.map(commandView) });
  });

  api.get('/commands/:id', async (c) => {
    const row = await getCommand(db, uuidParam(c, 'id', 'command'));
    if (!row) throw notFound('command');
    return c.json(commandView(row));
  });

  api.get('/agents/:id/events', async (c) => {
    const id = uuidParam(c, 'id', 'agent');
    const rows = await db
      .selectFrom('agent_events')
      .select(['seq', 'type', 'body', 'received_at', 'rejected_reason'])
      .where('agent_id', '=', id)
      .orderBy('seq', 'desc')
      .limit(500)
      .execute();
    return c.json({
      items: rows.map((r) => ({
        seq: r.seq,
        type: r.type,
        body: redactEventBody(r.body),
        receivedAt: r.received_at,
        ...(r.rejected_reason ? { rejected: r.rejected_reason } : {}),
      })),
    });
  });

  return api;
}

type AgentRow = {
  id: string;
  hostname: string;
  agent_version: string;
  labels: Record<string, string>;
  status: string;
  enrolled_at: Date;
  last_seen_at: Date | null;
  connected_at: Date | null;
  revoked_at: Date | null;
  facts: Record<string, unknown> | null;
  last_event_seq: number;
};

function agentView(r: AgentRow) {
  return {
    id: r.id,
    hostname: r.hostname,
    agentVersion: r.agent_version,
    labels: r.labels,
    status: r.status,
    enrolledAt: r.enrolled_at,
    lastSeenAt: r.last_seen_at,
    connectedAt: r.connected_at,
    revokedAt: r.revoked_at,
    lastEventSeq: r.last_event_seq,
    facts: r.facts,
  };
}

export const readiness = (db: Db) => sql`SELECT 1`.execute(db);
