import { decodeJwt, errors, importJWK, type JWK, jwtVerify } from 'jose';
import { sql } from 'kysely';
import type { Db } from '../db/database.js';
import { ProblemError, unauthorized } from '../problem.js';

export interface AgentAuthOptions {
  db: Db;
  /** The cluster id every agent token must name as its audience. */
  audience: string;
  maxAgeSeconds: number;
  clockSkewSeconds: number;
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Check the short-lived JWT an agent presents on connect: signed with the
 * agent's own enrolled Ed25519 key, for this control plane's audience, at most
 * `maxAgeSeconds` long, not yet seen (`jti` single use). Clock skew up to
 * `clockSkewSeconds` is tolerated; beyond that the refusal says how far off the
 * agent's clock is. Throws a 401 ProblemError; returns the agent id.
 */
export async function authenticateAgent(
  authorization: string | undefined,
  o: AgentAuthOptions,
): Promise<string> {
  const m = /^Bearer\s+(\S+)$/i.exec(authorization ?? '');
  if (!m?.[1]) throw unauthorized('missing agent token (Authorization: Bearer <jwt>)');
  const token = m[1];

  let claims: ReturnType<typeof decodeJwt>;
  try {
    claims = decodeJwt(token);
  } catch {
    throw unauthorized('agent token is not a JWT');
  }
  const agentId = claims.sub;
  if (!agentId || !UUID_RE.test(agentId)) throw unauthorized('agent token has no agent id (sub)');

  const jwk = await signingJwkOf(agentId, o.db);

  const nowS = Date.now() / 1000;
  const skew = o.clockSkewSeconds;
  if (typeof claims.iat === 'number' && claims.iat > nowS + skew) {
    throw clockSkew(
      `agent token issued ${Math.round(claims.iat - nowS)} s in the future: the agent's clock is ahead`,
    );
  }
  try {
    const key = await signingKey(jwk);
    await jwtVerify(token, key, {
      algorithms: ['EdDSA', 'Ed25519'],
      audience: o.audience,
      subject: agentId,
      clockTolerance: skew,
      maxTokenAge: o.maxAgeSeconds + skew,
      requiredClaims: ['iat', 'exp', 'jti', 'sub', 'aud'],
    });
  } catch (err) {
    if (err instanceof errors.JWTExpired) {
      const ago = typeof claims.exp === 'number' ? Math.round(nowS - claims.exp) : undefined;
      throw clockSkew(
        `agent token expired${ago !== undefined ? ` ${ago} s ago` : ''}; if this agent's clock is behind, fix its time sync`,
        'token-expired',
      );
    }
    if (err instanceof errors.JWTClaimValidationFailed)
      throw unauthorized(`agent token rejected: ${err.message}`);
    throw unauthorized('agent token signature is not valid for this agent');
  }
  if (
    typeof claims.exp !== 'number' ||
    typeof claims.iat !== 'number' ||
    claims.exp - claims.iat > o.maxAgeSeconds
  ) {
    throw unauthorized(`agent token lives longer than ${o.maxAgeSeconds} s`);
  }
  const jti = String(claims.jti);
  if (jti.length > 128) throw unauthorized('agent token jti too long');
  await recordJti(o.db, agentId, jti, new Date((claims.exp + skew) * 1000));
  return agentId;
}

/**
 * An agent's public signing key. It never changes (a new enrolment is a new agent id), so it is
 * read once per process; whether the agent is revoked is read at every connect (`recordJti`).
 */
async function signingJwkOf(agentId: string, db: Db): Promise<JWK> {
  let jwk = signingJwks.get(agentId);
  if (jwk) return jwk;
  const agent = await db
    .selectFrom('agents')
    .select(['id', 'signing_jwk', 'status'])
    .where('id', '=', agentId)
    .executeTakeFirst();
  if (!agent) throw unauthorized('unknown agent');
  if (agent.status === 'revoked') throw unauthorized('agent has been revoked', 'agent-revoked');
  jwk = agent.signing_jwk as JWK;
  if (signingJwks.size >= 100_000) signingJwks.clear();
  signingJwks.set(agentId, jwk);
  return jwk;
}

/** One statement: the token's jti recorded (single use) and the agent's status as of now. */
async function recordJti(db: Db, agentId: string, jti: string, expiresAt: Date) {
  const { rows } = await sql<{ status: string; fresh: boolean }>`
    WITH ins AS (
      INSERT INTO agent_token_jtis (jti, agent_id, expires_at)
      VALUES (${`${agentId}:${jti}`}, ${agentId}, ${expiresAt})
      ON CONFLICT DO NOTHING RETURNING 1)
    SELECT a.status, EXISTS (SELECT 1 FROM ins) AS fresh FROM agents a WHERE a.id = ${agentId}`.execute(db);
  const now = rows[0];
  if (!now) throw unauthorized('unknown agent');
  if (now.status === 'revoked') throw unauthorized('agent has been revoked', 'agent-revoked');
  if (!now.fresh) throw unauthorized('agent token already used (replay)', 'token-replayed');
}

/** Agents' public signing keys (JWK) by agent id. */
const signingJwks = new Map<string, JWK>();

/** Imported public keys by their JWK (an agent's key never changes; a fleet reconnecting imports each once). */
const keys = new Map<string, Awaited<ReturnType<typeof importJWK>>>();

async function signingKey(jwk: JWK) {
  const id = `${jwk.crv}:${jwk.x}`;
  let key = keys.get(id);
  if (!key) {
    key = await importJWK(jwk, 'EdDSA');
    if (keys.size >= 50_000) keys.clear();
    keys.set(id, key);
  }
  return key;
}

function clockSkew(detail: string, type = 'clock-skew'): ProblemError {
  return new ProblemError(401, 'Unauthorized', detail, {
    type,
    extra: { serverTime: new Date().toISOString() },
  });
}

export async function purgeExpiredJtis(db: Db) {
  await db.deleteFrom('agent_token_jtis').where('expires_at', '<', new Date()).execute();
}
