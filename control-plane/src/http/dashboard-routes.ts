import { Hono } from 'hono';
import { fleetOverview, targetsOverview } from '../services/dashboard.js';
import { targetDetail } from '../services/dashboard-target.js';
import type { AuthEnv } from './auth.js';
import { uuidParam } from './input.js';
import type { RouteDeps } from './route-deps.js';

/** The web dashboard's aggregate reads (viewer): built for it, never a list counted by the client. */
export function dashboardRoutes({ db }: RouteDeps) {
  const api = new Hono<AuthEnv>();
  api.get('/dashboard/overview', async (c) => c.json(await fleetOverview(db)));
  api.get('/dashboard/targets', async (c) => {
    const items = await targetsOverview(db);
    return c.json({ items, total: items.length });
  });
  api.get('/dashboard/targets/:id', async (c) =>
    c.json(await targetDetail(db, uuidParam(c, 'id', 'target'))),
  );
  return api;
}
