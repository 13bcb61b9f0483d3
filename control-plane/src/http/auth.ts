import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import type { Db } from '../db/database.js';
import type { Role } from '../db/schema.js';
import { forbidden, unauthorized } from './problem.js';

export const ROLES: readonly Role[] = ['viewer', 'operator', 'admin'];
const rank = (r: Role) => ROLES.indexOf(r);

export type Principal = { tokenId: string; name: string; role: Role; kind?: 'token' | 'user' };
export type AuthEnv = { Variables: { principal: Principal } };

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export function newSecretToken(prefix: 'api' | 'enr'): string {
  return `dbb_${prefix}_${randomBytes(32).toString('base64url')}`;
}

export function sameHash(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export async function createApiToken(db: Db, name: string, role: Role) {
  const token = newSecretToken('api');
  const id = randomUUID();
  await db
    .insertInto('api_tokens')
    .values({ id, name, role, token_hash: hashToken(token) })
    .execute();
  return { id, name, role, token };
}

/** Bearer-token authentication for every /api route it guards; stores the principal on the context. */
export function authenticate(db: Db): MiddlewareHandler<AuthEnv> {
  return async (c, next) => {
    const header = c.req.header('authorization') ?? '';
    const m = /^Bearer\s+(\S+)$/i.exec(header);
    if (!m?.[1]) throw unauthorized('missing bearer token (Authorization: Bearer <api token>)');
    const row = await db
      .selectFrom('api_tokens')
      .select(['id', 'name', 'role', 'revoked_at'])
      .where('token_hash', '=', hashToken(m[1]))
      .executeTakeFirst();
    if (!row || row.revoked_at) throw unauthorized('invalid or revoked API token');
    c.set('principal', { tokenId: row.id, name: row.name, role: row.role });
    // Best effort; a lost update of last_used_at is harmless.
    void db
      .updateTable('api_tokens')
      .set({ last_used_at: new Date() })
      .where('id', '=', row.id)
      .execute()
      .catch(() => {});
    await next();
  };
}

/** Allow the route only to principals with at least this role. */
export function requireRole(min: Role): MiddlewareHandler<AuthEnv> {
  return async (c, next) => {
    const p = c.get('principal');
    if (rank(p.role) < rank(min))
      throw forbidden(`this action needs the ${min} role; token '${p.name}' has ${p.role}`);
    await next();
  };
}
