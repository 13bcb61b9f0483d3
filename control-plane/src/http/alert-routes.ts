import { Hono } from 'hono';
import type { AlertKind } from '../db/schema.js';
import { badRequest, notFound } from '../problem.js';
import { ALERT_KINDS, targetHealth } from '../services/alerts.js';
import type { AuthEnv } from './auth.js';
import { uuidParam, uuidQuery } from './input.js';
import type { Ctx, RouteDeps } from './route-deps.js';

/** Alerts (firing and resolved) and each target's health: RPO and the next expected run. */
export function alertRoutes(d: RouteDeps) {
  const api = new Hono<AuthEnv>();
  api.get('/alerts', (c) => listAlerts(c, d));
  api.get('/targets/:id/health', async (c) => {
    const id = uuidParam(c, 'id', 'target');
    const t = await d.db.selectFrom('targets').select('id').where('id', '=', id).executeTakeFirst();
    if (!t) throw notFound('target');
    const firing = await d.db
      .selectFrom('alerts')
      .select(['kind', 'message', 'fired_at'])
      .where('target_id', '=', t.id)
      .where('state', '=', 'firing')
      .execute();
    const drill = await d.db
      .selectFrom('jobs')
      .select(['id', 'state', 'finished_at', 'result'])
      .where('target_id', '=', t.id)
      .where('type', '=', 'drill')
      .where('finished_at', 'is not', null)
      .orderBy('created_at', 'desc')
      .executeTakeFirst();
    const r = drill?.result as { rtoSeconds?: number; dataAgeSeconds?: number } | undefined;
    const lastDrill = drill
      ? {
          jobId: drill.id,
          state: drill.state,
          at: drill.finished_at,
          rtoSeconds: r?.rtoSeconds ?? null,
          dataAgeSeconds: r?.dataAgeSeconds ?? null,
        }
      : null;
    return c.json({ ...(await targetHealth(d.db, t.id)), firingAlerts: firing, lastDrill });
  });
  return api;
}

async function listAlerts(c: Ctx, { db }: RouteDeps) {
  let q = db.selectFrom('alerts').selectAll().orderBy('fired_at', 'desc').limit(500);
  const state = c.req.query('state');
  if (state === 'firing' || state === 'resolved') q = q.where('state', '=', state);
  else if (state) throw badRequest('state: firing or resolved', { field: 'state' });
  const kind = c.req.query('kind');
  if (kind && (ALERT_KINDS as readonly string[]).includes(kind)) q = q.where('kind', '=', kind as AlertKind);
  else if (kind) throw badRequest(`kind: one of ${ALERT_KINDS.join(', ')}`, { field: 'kind' });
  const target = uuidQuery(c, 'target');
  if (target) q = q.where('target_id', '=', target);
  const rows = await q.execute();
  return c.json({
    items: rows.map((r) => ({
      id: r.id,
      kind: r.kind,
      state: r.state,
      subject: r.subject,
      targetId: r.target_id,
      jobId: r.job_id,
      message: r.message,
      details: r.details,
      firedAt: r.fired_at,
      resolvedAt: r.resolved_at,
    })),
  });
}
