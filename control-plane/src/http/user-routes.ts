import { randomUUID } from 'node:crypto';
import { Hono } from 'hono';
import { z } from 'zod';
import type { Db } from '../db/database.js';
import { conflict, notFound } from '../problem.js';
import { hashPassword } from '../services/users.js';
import type { AuthEnv, Principal } from './auth.js';
import { parseJson, uuidParam } from './input.js';
import { PERMISSIONS, ROLES, roleRank } from './permissions.js';
import type { Ctx } from './route-deps.js';

const Username = z.string().regex(/^[a-zA-Z0-9_.@-]{1,64}$/, '1-64 of letters, digits, _ . @ -');
const Password = z.string().min(12, 'at least 12 characters').max(1024);
const Role = z.enum(ROLES as [string, ...string[]]);
const UserPatch = z
  .object({
    role: Role.optional(),
    password: Password.optional(),
    disabled: z.boolean().optional(),
    unlock: z.literal(true).optional(),
  })
  .strict();
const cols = [
  'id',
  'username',
  'role',
  'created_at',
  'disabled_at',
  'locked_until',
  'last_login_at',
] as const;

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

  r.patch('/users/:id', (c) => patchUser(c, db));

  r.delete('/users/:id', async (c) => {
    const id = uuidParam(c, 'id', 'user');
    if (isSelf(c.get('principal'), id)) throw conflict('you cannot delete yourself');
    const res = await db.deleteFrom('users').where('id', '=', id).executeTakeFirst();
    if (Number(res.numDeletedRows) === 0) throw notFound('user');
    return c.body(null, 204);
  });

  return r;
}

async function patchUser(c: Ctx, db: Db) {
  const id = uuidParam(c, 'id', 'user');
  const body = await parseJson(c, UserPatch);
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
}
