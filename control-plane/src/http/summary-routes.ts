import { Hono } from 'hono';
import { sql } from 'kysely';
import { targetHealthCounts } from '../services/dashboard.js';
import type { AuthEnv } from './auth.js';
import type { RouteDeps } from './route-deps.js';

/**
 * Aggregates for a fleet at a glance, each one indexed query (never the client counting
 * lists): agents by status, and targets by health.
 */
export function summaryRoutes({ db }: RouteDeps) {
  const api = new Hono<AuthEnv>();
  api.get('/agents/summary', async (c) => {
    const rows = await db
      .selectFrom('agents')
      .select(['status', sql<number>`count(*)::int`.as('n')])
      .groupBy('status')
      .execute();
    const by = Object.fromEntries(rows.map((r) => [r.status, r.n])) as Record<string, number>;
    return c.json({
      total: rows.reduce((a, r) => a + r.n, 0),
      online: by.online ?? 0,
      offline: by.offline ?? 0,
      pending: by.pending ?? 0,
      revoked: by.revoked ?? 0,
    });
  });
  api.get('/targets/summary', async (c) => {
    const { running: _running, ...counts } = await targetHealthCounts(db);
    return c.json(counts);
  });
  return api;
}
