import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import { jwtVerify } from 'jose';
import type { Db } from '../db/database.js';
import type { Role } from '../db/schema.js';
import { unauthorized } from '../problem.js';

export interface AuthSettings {
  jwtKey: Uint8Array;
  accessTokenTtlSeconds: number;
  refreshTokenTtlSeconds: number;
  /** Failed logins in a row that lock an account, and for how long. */
  loginMaxFailures: number;
  loginLockoutSeconds: number;
  /** Login attempts per source address per minute. */
  loginRateLimitPerMinute: number;
  /** Browser session cookies carry `Secure` (the control plane is reached over https: DBBACKUP_PUBLIC_URL). */
  secureCookies?: boolean;
}

export type Principal = { tokenId: string; name: string; role: Role; kind?: 'token' | 'user' };
export type AuthEnv = {
  Variables: { principal: Principal; auditDetail?: Record<string, unknown> };
};

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export function newSecretToken(prefix: 'api' | 'enr' | 'rft'): string {
  return `dbb_${prefix}_${randomBytes(32).toString('base64url')}`;
}

export function sameHash(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export async function createApiToken(db: Db, name: string, role: Role, expiresAt: Date | null = null) {
  const token = newSecretToken('api');
  const id = randomUUID();
  await db
    .insertInto('api_tokens')
    .values({ id, name, role, token_hash: hashToken(token), expires_at: expiresAt })
    .execute();
  return { id, name, role, token, expiresAt: expiresAt?.toISOString() ?? null };
}

export const ACCESS_TOKEN_ISSUER = 'dbbackup-control-plane';
export const ACCESS_TOKEN_AUDIENCE = 'dbbackup-api';

/**
 * Bearer authentication for every /api route it guards: an API token
 * (`dbb_api_…`, looked up by hash; revoked or expired → 401) or a user's access
 * token (a short-lived JWT from POST /auth/login, HS256 under a key derived
 * from the master key; the user must still exist and not be disabled).
 */

/** When this process last wrote each token's last_used_at (it is written at most once a minute). */
const lastUseWritten = new Map<string, number>();
export function authenticate(db: Db, jwtKey: Uint8Array): MiddlewareHandler<AuthEnv> {
  return async (c, next) => {
    const header = c.req.header('authorization') ?? '';
    const m = /^Bearer\s+(\S+)$/i.exec(header);
    if (!m?.[1]) throw unauthorized('missing bearer token (Authorization: Bearer <api token>)');
    const bearer = m[1];
    if (!bearer.startsWith('dbb_')) {
      let sub: string | undefined;
      try {
        const { payload } = await jwtVerify(bearer, jwtKey, {
          issuer: ACCESS_TOKEN_ISSUER,
          audience: ACCESS_TOKEN_AUDIENCE,
          algorithms: ['HS256'],
        });
        sub = payload.sub;
      } catch {
        throw unauthorized('invalid or expired access token; log in again or use POST /auth/refresh');
      }
      const user = await db
        .selectFrom('users')
        .select(['id', 'username', 'role', 'disabled_at'])
        .where('id', '=', sub ?? '00000000-0000-0000-0000-000000000000')
        .executeTakeFirst();
      if (!user || user.disabled_at) throw unauthorized('this user no longer exists or is disabled');
      c.set('principal', { tokenId: user.id, name: user.username, role: user.role, kind: 'user' });
      return next();
    }
    const row = await db
      .selectFrom('api_tokens')
      .select(['id', 'name', 'role', 'revoked_at', 'expires_at'])
      .where('token_hash', '=', hashToken(bearer))
      .executeTakeFirst();
    if (!row || row.revoked_at) throw unauthorized('invalid or revoked API token');
    if (row.expires_at && new Date(row.expires_at).getTime() <= Date.now()) {
      throw unauthorized(`API token '${row.name}' expired at ${new Date(row.expires_at).toISOString()}`);
    }
    c.set('principal', { tokenId: row.id, name: row.name, role: row.role, kind: 'token' });
    // Best effort, at most once a minute per token; a lost update of last_used_at is harmless.
    if (Date.now() - (lastUseWritten.get(row.id) ?? 0) >= 60_000) {
      lastUseWritten.set(row.id, Date.now());
      void db
        .updateTable('api_tokens')
        .set({ last_used_at: new Date() })
        .where('id', '=', row.id)
        .execute()
        .catch(() => {});
    }
    await next();
  };
}
