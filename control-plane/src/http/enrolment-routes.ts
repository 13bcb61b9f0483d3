import { randomUUID } from 'node:crypto';
import { AGENT_CONNECT_PATH } from '@dbbackup/proto';
import { Hono } from 'hono';
import { importJWK, type JWK } from 'jose';
import { z } from 'zod';
import { type Db, json } from '../db/database.js';
import { conflict, ProblemError, unauthorized } from '../problem.js';
import { type AuthEnv, hashToken, newSecretToken } from './auth.js';
import { parseJson } from './input.js';
import { installCommand, publicUrlOf } from './install-routes.js';
import type { Ctx, RouteDeps } from './route-deps.js';

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
type EnrollBody = z.infer<typeof EnrollBody>;

/** Enrolment: it authenticates with the one-time token in its body, not a bearer token. */
export function enrolmentRoutes(d: RouteDeps) {
  const api = new Hono<AuthEnv>();
  api.post('/agents/enroll', (c) => enrol(c, d));
  return api;
}

/** Making enrolment tokens: behind authentication (an operator's right). */
export function enrolmentTokenRoutes(d: RouteDeps) {
  const api = new Hono<AuthEnv>();
  api.post('/enrollment-tokens', (c) => createEnrolmentToken(c, d));
  return api;
}

async function enrol(c: Ctx, d: RouteDeps) {
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
  const result = await claimAndEnrol(d.db, hash, agentId, body);
  if (!result) throw await refusedToken(d.db, hash);
  return c.json(
    {
      agentId,
      audience: d.clusterId,
      connectPath: AGENT_CONNECT_PATH,
      heartbeatIntervalMs: d.heartbeatIntervalMs,
      labels: result.labels,
    },
    201,
  );
}

/** One UPDATE decides the race: of two enrolments with the same token exactly one claims it. */
async function claimAndEnrol(db: Db, hash: string, agentId: string, body: EnrollBody) {
  return db.transaction().execute(async (tx) => {
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
}

/** Why a token was not claimed: unknown, used, or expired. */
async function refusedToken(db: Db, hash: string): Promise<ProblemError> {
  const t = await db
    .selectFrom('enrollment_tokens')
    .select(['used_at', 'expires_at'])
    .where('token_hash', '=', hash)
    .executeTakeFirst();
  if (!t) return unauthorized('unknown enrollment token', 'enrollment-token-invalid');
  if (t.used_at) return conflict('enrollment token has already been used', 'enrollment-token-used');
  return unauthorized(
    `enrollment token expired at ${new Date(t.expires_at).toISOString()}`,
    'enrollment-token-expired',
  );
}

const EnrolmentTokenBody = (defaultTtl: number) =>
  z.object({
    ttlSeconds: z
      .number()
      .int()
      .min(60)
      .max(30 * 86_400)
      .default(defaultTtl),
    labels: Labels.default({}),
  });

async function createEnrolmentToken(c: Ctx, d: RouteDeps) {
  const body = await parseJson(c, EnrolmentTokenBody(d.enrollmentTokenTtlSeconds));
  const token = newSecretToken('enr');
  const id = randomUUID();
  const expiresAt = new Date(Date.now() + body.ttlSeconds * 1000);
  await d.db
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
}
