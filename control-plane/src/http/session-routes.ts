import { randomUUID } from 'node:crypto';
import { Hono } from 'hono';
import { SignJWT } from 'jose';
import { z } from 'zod';
import type { Db } from '../db/database.js';
import { ProblemError, unauthorized } from '../problem.js';
import { burnPasswordTime, verifyPassword } from '../services/users.js';
import { sourceIp } from './audit-trail.js';
import {
  ACCESS_TOKEN_AUDIENCE,
  ACCESS_TOKEN_ISSUER,
  type AuthEnv,
  type AuthSettings,
  hashToken,
  newSecretToken,
} from './auth.js';
import { parseJson } from './input.js';
import type { Ctx } from './route-deps.js';

const tooMany = (detail: string, retryAfterS: number) =>
  new ProblemError(429, 'Too Many Requests', detail, { extra: { retryAfterSeconds: retryAfterS } });

/** A fixed-window counter per source address, in memory (one control-plane process). */
class RateLimit {
  readonly #hits = new Map<string, { n: number; until: number }>();
  constructor(readonly perMinute: number) {}
  hit(key: string): number {
    const now = Date.now();
    const h = this.#hits.get(key);
    if (!h || h.until <= now) {
      if (this.#hits.size > 10_000) this.#hits.clear();
      this.#hits.set(key, { n: 1, until: now + 60_000 });
      return 0;
    }
    h.n++;
    return h.n > this.perMinute ? Math.ceil((h.until - now) / 1000) : 0;
  }
}

/** POST /auth/login, /auth/refresh, /auth/logout: a user's sessions, mounted before authentication. */
export function sessionRoutes(db: Db, s: AuthSettings, limit = new RateLimit(s.loginRateLimitPerMinute)) {
  const r = new Hono<AuthEnv>();
  r.post('/auth/login', async (c) => {
    const body = await parseJson(c, LoginBody);
    return c.json(await issue(db, s, await checkLogin(c, db, s, limit, body)), 200);
  });
  r.post('/auth/refresh', async (c) => {
    const body = await parseJson(c, z.object({ refreshToken: z.string().min(1).max(256) }));
    return c.json(await issue(db, s, await rotate(c, db, body.refreshToken)), 200);
  });
  r.post('/auth/logout', async (c) => {
    const body = await parseJson(c, z.object({ refreshToken: z.string().min(1).max(256) }));
    await endSession(db, body.refreshToken);
    return c.body(null, 204);
  });
  return r;
}

export const LoginBody = z.object({ username: z.string().max(64), password: z.string().max(1024) });

/** A refresh token revoked: the session it carries ends. */
export async function endSession(db: Db, refreshToken: string) {
  await db
    .updateTable('refresh_tokens')
    .set({ revoked_at: new Date() })
    .where('token_hash', '=', hashToken(refreshToken))
    .where('revoked_at', 'is', null)
    .execute();
}

/** A login rate limiter (per source address, per minute). */
export function loginLimiter(perMinute: number) {
  return new RateLimit(perMinute);
}
export type { RateLimit };

/** An access token (short-lived JWT) and a one-use refresh token, for a user who proved who they are. */
export async function issue(db: Db, s: AuthSettings, user: { id: string; username: string; role: string }) {
  const accessToken = await new SignJWT({ role: user.role, name: user.username })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(user.id)
    .setIssuer(ACCESS_TOKEN_ISSUER)
    .setAudience(ACCESS_TOKEN_AUDIENCE)
    .setIssuedAt()
    .setJti(randomUUID())
    .setExpirationTime(`${s.accessTokenTtlSeconds}s`)
    .sign(s.jwtKey);
  const refreshToken = newSecretToken('rft');
  const expiresAt = new Date(Date.now() + s.refreshTokenTtlSeconds * 1000);
  await db
    .insertInto('refresh_tokens')
    .values({
      id: randomUUID(),
      user_id: user.id,
      token_hash: hashToken(refreshToken),
      expires_at: expiresAt,
    })
    .execute();
  return {
    accessToken,
    tokenType: 'Bearer',
    expiresIn: s.accessTokenTtlSeconds,
    refreshToken,
    refreshExpiresAt: expiresAt.toISOString(),
    user: { id: user.id, username: user.username, role: user.role },
  };
}

/** The user a username and password prove, or 401/429 (failures counted, the account locked after too many). */
export async function checkLogin(
  c: Ctx,
  db: Db,
  s: AuthSettings,
  limit: RateLimit,
  body: z.infer<typeof LoginBody>,
) {
  const wait = limit.hit(sourceIp(c) ?? 'unknown');
  if (wait > 0) {
    c.header('retry-after', String(wait));
    throw tooMany(`too many login attempts from this address; try again in ${wait} s`, wait);
  }
  c.set('auditDetail', { username: body.username.slice(0, 64) });
  const user = await db
    .selectFrom('users')
    .selectAll()
    .where('username', '=', body.username)
    .executeTakeFirst();
  if (!user || user.disabled_at) {
    await burnPasswordTime(body.password);
    throw unauthorized('invalid username or password', 'login-failed');
  }
  if (user.locked_until && new Date(user.locked_until).getTime() > Date.now()) {
    const wait = Math.ceil((new Date(user.locked_until).getTime() - Date.now()) / 1000);
    c.header('retry-after', String(wait));
    throw tooMany(
      `this account is locked after ${s.loginMaxFailures} failed logins; try again in ${wait} s`,
      wait,
    );
  }
  if (!(await verifyPassword(body.password, user.password_hash))) {
    const failures = user.failed_logins + 1;
    const lock = failures >= s.loginMaxFailures;
    await db
      .updateTable('users')
      .set({
        failed_logins: lock ? 0 : failures,
        ...(lock ? { locked_until: new Date(Date.now() + s.loginLockoutSeconds * 1000) } : {}),
      })
      .where('id', '=', user.id)
      .execute();
    if (lock) c.set('auditDetail', { username: user.username, locked: true });
    throw unauthorized('invalid username or password', 'login-failed');
  }
  await db
    .updateTable('users')
    .set({ failed_logins: 0, locked_until: null, last_login_at: new Date() })
    .where('id', '=', user.id)
    .execute();
  c.set('principal', { tokenId: user.id, name: user.username, role: user.role, kind: 'user' });
  return user;
}

/** The user a refresh token is for, the token used up; its reuse ends every session of its user. */
export async function rotate(c: Ctx, db: Db, refreshToken: string) {
  const row = await db
    .selectFrom('refresh_tokens as t')
    .innerJoin('users as u', 'u.id', 't.user_id')
    .select([
      't.id',
      't.user_id',
      't.expires_at',
      't.used_at',
      't.revoked_at',
      'u.username',
      'u.role',
      'u.disabled_at',
    ])
    .where('t.token_hash', '=', hashToken(refreshToken))
    .executeTakeFirst();
  if (!row) throw unauthorized('unknown refresh token', 'refresh-invalid');
  c.set('auditDetail', { username: row.username });
  if (row.used_at || row.revoked_at) {
    // A refresh token is good once: its reuse means it was copied. End every session of that user.
    await db
      .updateTable('refresh_tokens')
      .set({ revoked_at: new Date() })
      .where('user_id', '=', row.user_id)
      .where('revoked_at', 'is', null)
      .execute();
    throw unauthorized('refresh token already used: every session of this user was ended', 'refresh-reused');
  }
  if (new Date(row.expires_at).getTime() <= Date.now())
    throw unauthorized('refresh token expired', 'refresh-expired');
  if (row.disabled_at) throw unauthorized('this user is disabled', 'refresh-invalid');
  const used = await db
    .updateTable('refresh_tokens')
    .set({ used_at: new Date() })
    .where('id', '=', row.id)
    .where('used_at', 'is', null)
    .executeTakeFirst();
  if (Number(used.numUpdatedRows) === 0) throw unauthorized('refresh token already used', 'refresh-reused');
  c.set('principal', { tokenId: row.user_id, name: row.username, role: row.role, kind: 'user' });
  return { id: row.user_id, username: row.username, role: row.role };
}
