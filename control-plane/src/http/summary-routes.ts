import { Hono } from 'hono';
import { sql } from 'kysely';
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
    // Overdue: a firing backup_missed alert. Failing: its newest finished backup job failed.
    // Never backed up: no good backup in the catalogue.
    const { rows } = await sql<{
      total: number;
      overdue: number;
      failing: number;
      never: number;
    }>`
      SELECT count(*)::int AS total,
             count(*) FILTER (WHERE EXISTS (
               SELECT 1 FROM alerts a WHERE a.kind = 'backup_missed' AND a.state = 'firing'
                                        AND a.subject = 'target:' || t.id))::int AS overdue,
             count(*) FILTER (WHERE (
               SELECT j.state FROM jobs j
                WHERE j.target_id = t.id AND j.type = 'backup' AND j.state IN ('succeeded', 'failed', 'stalled')
                ORDER BY j.created_at DESC LIMIT 1) IN ('failed', 'stalled'))::int AS failing,
             count(*) FILTER (WHERE NOT EXISTS (
               SELECT 1 FROM backups b WHERE b.target_id = t.id AND b.status = 'completed'
                                         AND b.deleted_at IS NULL))::int AS never
        FROM targets t`.execute(db);
    const { never, ...r } = rows[0] ?? { total: 0, overdue: 0, failing: 0, never: 0 };
    return c.json({ ...r, neverBackedUp: never });
  });
  return api;
}
