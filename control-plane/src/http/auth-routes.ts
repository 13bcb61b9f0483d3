import { randomUUID } from 'node:crypto';
import { Hono } from 'hono';
import { SignJWT } from 'jose';
import { z } from 'zod';
import type { Db } from '../db/database.js';
import { conflict, notFound, ProblemError, unauthorized } from '../problem.js';
import { burnPasswordTime, hashPassword, verifyPassword } from '../services/users.js';
import { sourceIp } from './audit-trail.js';
import {
  ACCESS_TOKEN_AUDIENCE,
  ACCESS_TOKEN_ISSUER,
  type AuthEnv,
  hashToken,
  newSecretToken,
  type Principal,
} from './auth.js';
import { parseJson, uuidParam } from './input.js';
import { PERMISSIONS, ROLES, roleRank } from './permissions.js';

export interface AuthSettings {
  jwtKey: Uint8Array;
  accessTokenTtlSeconds: number;
  refreshTokenTtlSeconds: number;
  /** Failed logins in a row that lock an account, and for how long. */
  loginMaxFailures: number;
  loginLockoutSeconds: number;
  /** Login attempts per source address per minute. */
  loginRateLimitPerMinute: number;
}

const Username = z.string().regex(/^[a-zA-Z0-9_.@-]{1,64}$/, '1-64 of letters, digits, _ . @ -');
const Password = z.string().min(12, 'at least 12 characters').max(1024);
const Role = z.enum(ROLES as [string, ...string[]]);

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

/** POST /auth/login, /auth/refresh, /auth/logout: mounted before authentication. */
export function publicAuthRoutes(db: Db, s: AuthSettings) {
  const r = new Hono<AuthEnv>();
  const limit = new RateLimit(s.loginRateLimitPerMinute);

  async function issue(user: { id: string; username: string; role: string }) {
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

  r.post('/auth/login', async (c) => {
    const wait = limit.hit(sourceIp(c) ?? 'unknown');
    if (wait > 0) {
      c.header('retry-after', String(wait));
      throw tooMany(`too many login attempts from this address; try again in ${wait} s`, wait);
    }
    const body = await parseJson(
      c,
      z.object({ username: z.string().max(64), password: z.string().max(1024) }),
    );
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
    return c.json(await issue(user), 200);
  });

  r.post('/auth/refresh', async (c) => {
    const body = await parseJson(c, z.object({ refreshToken: z.string().min(1).max(256) }));
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
      .where('t.token_hash', '=', hashToken(body.refreshToken))
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
      throw unauthorized(
        'refresh token already used: every session of this user was ended',
        'refresh-reused',
      );
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
    return c.json(await issue({ id: row.user_id, username: row.username, role: row.role }), 200);
  });

  r.post('/auth/logout', async (c) => {
    const body = await parseJson(c, z.object({ refreshToken: z.string().min(1).max(256) }));
    await db
      .updateTable('refresh_tokens')
      .set({ revoked_at: new Date() })
      .where('token_hash', '=', hashToken(body.refreshToken))
      .where('revoked_at', 'is', null)
      .execute();
    return c.body(null, 204);
  });

  return r;
}

const userView = (u: {
  id: string;
  username: string;
  role: string;
  created_at: Date;
  disabled_at: Date | null;
  locked_until: Date | null;
  last_login_at: Date | null;
}) => ({
  id: u.id,
  username: u.username,
  role: u.role,
  createdAt: u.created_at,
  disabledAt: u.disabled_at,
  lockedUntil: u.locked_until && new Date(u.locked_until).getTime() > Date.now() ? u.locked_until : null,
  lastLoginAt: u.last_login_at,
});

/** Whether the caller is this user (an API token is never a user). */
const isSelf = (p: Principal, userId: string) => p.kind === 'user' && p.tokenId === userId;

/** /auth/me, /auth/permissions and user management (behind authentication and PERMISSIONS). */
export function userRoutes(db: Db) {
  const r = new Hono<AuthEnv>();
  const cols = [
    'id',
    'username',
    'role',
    'created_at',
    'disabled_at',
    'locked_until',
    'last_login_at',
  ] as const;

  r.get('/auth/me', (c) => {
    const p = c.get('principal');
    return c.json({ id: p.tokenId, name: p.name, role: p.role, kind: p.kind ?? 'token' });
  });

  r.get('/auth/permissions', (c) => {
    const role = c.get('principal').role;
    return c.json({
      role,
      permissions: Object.entries(PERMISSIONS).map(([route, need]) => ({
        route,
        role: need,
        allowed: roleRank(role) >= roleRank(need),
      })),
    });
  });

  r.post('/users', async (c) => {
    const body = await parseJson(c, z.object({ username: Username, password: Password, role: Role }));
    const id = randomUUID();
    const inserted = await db
      .insertInto('users')
      .values({
        id,
        username: body.username,
        password_hash: await hashPassword(body.password),
        role: body.role as (typeof ROLES)[number],
      })
      .onConflict((oc) => oc.column('username').doNothing())
      .returning(cols)
      .executeTakeFirst();
    if (!inserted) throw conflict(`user ${body.username} already exists`);
    return c.json(userView(inserted), 201);
  });

  r.get('/users', async (c) => {
    const rows = await db.selectFrom('users').select(cols).orderBy('username').execute();
    return c.json({ items: rows.map(userView) });
  });

  r.patch('/users/:id', async (c) => {
    const id = uuidParam(c, 'id', 'user');
    const body = await parseJson(
      c,
      z
        .object({
          role: Role.optional(),
          password: Password.optional(),
          disabled: z.boolean().optional(),
          unlock: z.literal(true).optional(),
        })
        .strict(),
    );
    if (isSelf(c.get('principal'), id) && (body.disabled || (body.role && body.role !== 'admin'))) {
      throw conflict('you cannot disable or demote yourself');
    }
    const set: Record<string, unknown> = {};
    if (body.role) set.role = body.role;
    if (body.password) set.password_hash = await hashPassword(body.password);
    if (body.disabled !== undefined) set.disabled_at = body.disabled ? new Date() : null;
    if (body.unlock) Object.assign(set, { locked_until: null, failed_logins: 0 });
    const row = Object.keys(set).length
      ? await db.updateTable('users').set(set).where('id', '=', id).returning(cols).executeTakeFirst()
      : await db.selectFrom('users').select(cols).where('id', '=', id).executeTakeFirst();
    if (!row) throw notFound('user');
    if (body.password || body.disabled) {
      await db
        .updateTable('refresh_tokens')
        .set({ revoked_at: new Date() })
        .where('user_id', '=', id)
        .where('revoked_at', 'is', null)
        .execute();
    }
    return c.json(userView(row));
  });

  r.delete('/users/:id', async (c) => {
    const id = uuidParam(c, 'id', 'user');
    if (isSelf(c.get('principal'), id)) throw conflict('you cannot delete yourself');
    const res = await db.deleteFrom('users').where('id', '=', id).executeTakeFirst();
    if (Number(res.numDeletedRows) === 0) throw notFound('user');
    return c.body(null, 204);
  });

  return r;
}
