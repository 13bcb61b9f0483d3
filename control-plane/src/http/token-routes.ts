import { Hono } from 'hono';
import { z } from 'zod';
import { conflict, notFound } from '../problem.js';
import { type AuthEnv, createApiToken } from './auth.js';
import { parseJson, uuidParam } from './input.js';
import { ROLES } from './permissions.js';
import type { RouteDeps } from './route-deps.js';

/** API tokens, for scripts and the CLI: made, listed and revoked by an admin. */
export function tokenRoutes(d: RouteDeps) {
  const { db } = d;
  const api = new Hono<AuthEnv>();
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
  return api;
}
